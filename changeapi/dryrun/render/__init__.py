"""Renderings of a dry-run report: Markdown for pull requests, SVG for the lock timeline."""

from changeapi.dryrun.render.markdown import report_markdown
from changeapi.dryrun.render.svg import report_svg

__all__ = ["report_markdown", "report_svg"]
