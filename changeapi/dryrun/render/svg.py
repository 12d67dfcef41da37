"""The lock timeline as SVG: one row per table, one bar per lock span, coloured by what it blocks.

Bars are drawn on the production timeline when the report has estimates (so a reviewer sees
how long the table would really be blocked), otherwise on the shadow's measured timeline.
A pure function of the report; the output is a standalone SVG document.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

from changeapi.dryrun.contract import LockSpan, Report

WIDTH = 960
LABEL_WIDTH = 190
ROW_HEIGHT = 26
TOP = 54
BOTTOM = 64

COLOURS = {
    "reads_and_writes": "#d62728",  # ACCESS EXCLUSIVE: nothing gets through
    "writes": "#ff7f0e",  # SHARE ... EXCLUSIVE: reads only
    "ddl": "#1f77b4",  # weaker modes: only other DDL waits
    "new": "#c7c7c7",  # relations created by the change: nobody else sees them
}
LEGEND = [
    ("reads_and_writes", "blocks reads and writes"),
    ("writes", "blocks writes"),
    ("ddl", "blocks DDL only"),
    ("new", "new relation (blocks nobody)"),
]


def _kind(span: LockSpan) -> str:
    if span.new_relation:
        return "new"
    if span.blocks_reads:
        return "reads_and_writes"
    if span.blocks_writes:
        return "writes"
    return "ddl"


def _label(ms: float) -> str:
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.1f} s"


def report_svg(report: Report) -> str:
    """A standalone SVG of the report's lock spans."""
    spans = report.lock_spans
    estimated = report.estimation is not None and report.estimation.estimated

    def start(span: LockSpan) -> float:
        return span.estimated_from_ms if estimated else span.from_ms

    def end(span: LockSpan) -> float:
        return span.estimated_to_ms if estimated else span.to_ms

    tables: list[str] = []
    for span in spans:
        table = span.table or span.relation
        if table not in tables:
            tables.append(table)
    horizon = max([end(span) for span in spans] + [1.0])
    plot_width = WIDTH - LABEL_WIDTH - 20
    height = TOP + max(len(tables), 1) * ROW_HEIGHT + BOTTOM

    def x(ms: float) -> float:
        return LABEL_WIDTH + plot_width * ms / horizon

    title = "Lock timeline at production size (estimated)" if estimated else "Lock timeline on the shadow (measured)"
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        'font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="22" font-size="15" font-weight="bold">{escape(title)}</text>',
    ]
    if not spans:
        parts.append(f'<text x="{LABEL_WIDTH}" y="{TOP + 16}">No locks were taken.</text>')
    for row, table in enumerate(tables):
        y = TOP + row * ROW_HEIGHT
        parts.append(f'<text x="10" y="{y + 17}">{escape(table[:28])}</text>')
        parts.append(f'<line x1="{LABEL_WIDTH}" y1="{y + ROW_HEIGHT}" x2="{WIDTH - 20}" y2="{y + ROW_HEIGHT}" stroke="#eeeeee"/>')
        for span in (s for s in spans if (s.table or s.relation) == table):
            left, right = x(start(span)), x(end(span))
            held = end(span) - start(span)
            tooltip = f"{span.mode} on {span.relation} from statement {span.statement_index}: held {_label(held)}"
            parts.append(
                f'<rect x="{left:.1f}" y="{y + 4}" width="{max(right - left, 2):.1f}" height="{ROW_HEIGHT - 8}" '
                f'fill="{COLOURS[_kind(span)]}" fill-opacity="0.8"><title>{escape(tooltip)}</title></rect>'
            )
    axis_y = TOP + max(len(tables), 1) * ROW_HEIGHT
    parts.append(f'<line x1="{LABEL_WIDTH}" y1="{axis_y}" x2="{WIDTH - 20}" y2="{axis_y}" stroke="#333333"/>')
    for tick in range(5):
        ms = horizon * tick / 4
        parts.append(f'<text x="{x(ms):.1f}" y="{axis_y + 16}" text-anchor="middle">{escape(_label(ms))}</text>')
    legend_x = LABEL_WIDTH
    for kind, text in LEGEND:
        parts.append(f'<rect x="{legend_x}" y="{axis_y + 30}" width="12" height="12" fill="{COLOURS[kind]}"/>')
        parts.append(f'<text x="{legend_x + 16}" y="{axis_y + 40}">{escape(text)}</text>')
        legend_x += 28 + 7 * len(text)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
