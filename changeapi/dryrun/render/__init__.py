"""Renderings of a dry-run report: Markdown for pull requests, the lock timeline as SVG and PNG."""

from changeapi.dryrun.render.markdown import report_markdown
from changeapi.dryrun.render.png import report_png
from changeapi.dryrun.render.svg import report_svg

__all__ = ["report_markdown", "report_png", "report_svg"]
