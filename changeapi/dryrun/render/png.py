"""The lock timeline as PNG, for places that show no SVG (a pull request comment, a chat message).

The SVG drawn by `report_svg`, rasterised by CairoSVG at twice its size so it stays sharp on
high-density screens. The SVG is our own (every text escaped, no external reference), and
CairoSVG runs with its default `unsafe=False`: no entity expansion, no file or URL is read.
"""

from __future__ import annotations

from changeapi.dryrun.contract import Report
from changeapi.dryrun.render.svg import report_svg

SCALE = 2.0


class PngUnavailable(RuntimeError):
    """CairoSVG cannot be loaded: the system's Cairo library is missing."""


def report_png(report: Report) -> bytes:
    """A PNG of the report's lock timeline."""
    # Imported here, not with the module: CairoSVG loads the system's libcairo when imported,
    # and a server without it should lose only this rendering, not every import of the renderers.
    try:
        import cairosvg
    except (ImportError, OSError) as error:
        raise PngUnavailable(f"the PNG rendering needs CairoSVG and the Cairo library: {error}") from error
    png: bytes = cairosvg.svg2png(bytestring=report_svg(report).encode(), scale=SCALE)
    return png
