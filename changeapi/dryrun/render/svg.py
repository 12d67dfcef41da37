"""The lock timeline as SVG: one lane per lock held, statements as numbered columns, coloured by
what each lock blocks.

Drawn on the production timeline when the report has estimates (so a reviewer sees how long a
table would really be blocked), otherwise on the shadow's measured one. Everything a reader
needs is drawn as text (statement numbers, relations, modes, held times, the legend), so a
PNG of it in a pull request comment says as much as the SVG with its hover titles. Where
production has drifted from the migrations on an object the change touches, its lane carries a
warning sign and a note under the axis says what drifted. A pure function of the report; the
output is a standalone SVG document.
"""

from __future__ import annotations

import re
from xml.sax.saxutils import escape

from changeapi.dryrun.contract import DriftWarning, Report
from changeapi.dryrun.render.timeline_layout import (
    SEVERITY_ORDER,
    Bar,
    Lane,
    TimelineLayout,
    duration_label,
    mode_name,
    severity,
    timeline_layout,
)

WIDTH = 960
PLOT_LEFT = 290
PLOT_RIGHT = WIDTH - 24
TOP = 84
LANE_HEIGHT = 32
BAR_HEIGHT = 20
FONT = "DejaVu Sans, Verdana, Arial, sans-serif"
CHAR_WIDTH = 0.62
"""Average advance of a character in em for the fonts above; text is cut to fit by it."""

COLOURS = {
    "reads_and_writes": ("#c62828", "#ffffff"),  # fill, text on it
    "writes": ("#f59e0b", "#000000"),
    "none": ("#1f6fb4", "#ffffff"),
    "new": ("#cfcfcf", "#000000"),
}
LEGEND = (
    ("reads_and_writes", "blocks reads and writes"),
    ("writes", "blocks writes (reads go on)"),
    ("none", "blocks nothing Django's queries do (only DDL, VACUUM)"),
    ("new", "created by this change: no one else sees it yet"),
)
DRIFT_COLOUR = "#b45309"
MAX_DRIFT_NOTES = 6
"""Drifted objects listed under the timeline; the Markdown report lists every one."""
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _text(value: object) -> str:
    """Text content or attribute value, escaped; characters XML cannot carry become U+FFFD."""
    return escape(_NOT_XML.sub("\ufffd", str(value)), {'"': "&quot;"})


def _width(text: str, size: float) -> float:
    return len(text) * size * CHAR_WIDTH


def _fit(text: str, width: float, size: float) -> str:
    """`text`, cut with an ellipsis to fit `width` pixels."""
    room = int(width / (size * CHAR_WIDTH))
    return text if len(text) <= room else text[: max(room - 1, 1)] + "…"


def _lane_drift(lane: Lane, warnings: tuple[DriftWarning, ...]) -> list[DriftWarning]:
    """The drifted objects a lane's relation stands for: on a table's lane, those of the table
    (its columns, constraints, the table itself); on an index's lane, that index."""
    if lane.is_table:
        return [w for w in warnings if w.table == lane.table or (w.kind == "table" and w.name == lane.table)]
    return [w for w in warnings if w.kind == "index" and w.name == lane.relation]


def _drift_marker(drifted: list[DriftWarning], y: float) -> str:
    """A warning sign at the right of the lane's label; its title names what drifted."""
    what = "; ".join(f"{w.kind} {w.name} is {w.status.replace('_', ' ')} in production" for w in drifted)
    return (
        f'<text class="drift" x="{PLOT_LEFT - 8}" y="{y + 14}" font-size="12" font-weight="bold" text-anchor="end" '
        f'fill="{DRIFT_COLOUR}">⚠<title>{_text("Production has drifted: " + what)}</title></text>'
    )


def _lane_label(lane: Lane, y: float, drifted: list[DriftWarning]) -> list[str]:
    indent = 0 if lane.is_table else 14
    name = lane.relation if lane.is_table else f"{lane.relation_kind} {lane.relation}"
    shown = _fit(name, PLOT_LEFT - 20 - indent - (14 if drifted else 0), 12)
    weight = ' font-weight="bold"' if lane.is_table else ""
    parts = [
        f'<text class="relation" x="{10 + indent}" y="{y + 14}"{weight}>{_text(shown)}<title>{_text(name)}</title></text>',
        f'<text x="{10 + indent}" y="{y + 27}" font-size="10" fill="#444444">{_text(mode_name(lane.mode))}</text>',
    ]
    return [*parts, _drift_marker(drifted, y)] if drifted else parts


def _bar(bar: Bar, y: float) -> list[str]:
    first = bar.spans[0]
    fill, ink = COLOURS[min((severity(span) for span in bar.spans), key=SEVERITY_ORDER.index)]
    number = bar.statement_index + 1
    held = duration_label(bar.held_ms)
    taken = ", ".join(str(span.statement_index + 1) for span in bar.spans)
    tooltip = f"{first.mode} on {first.relation}, taken by statement {taken}, held {held}"
    width = bar.x1 - bar.x0
    parts = [
        f'<rect class="lock" data-relation="{_text(first.relation)}" data-mode="{_text(first.mode)}" '
        f'data-statements="{taken}" x="{bar.x0:.1f}" y="{y + 6}" width="{width:.1f}" height="{BAR_HEIGHT}" '
        f'fill="{fill}" stroke="#ffffff" stroke-width="1"><title>{_text(tooltip)}</title></rect>'
    ]
    for label in (f"#{number} · held {held}", f"#{number}"):
        if _width(label, 11) + 8 <= width:
            parts.append(
                f'<text x="{bar.x0 + 4:.1f}" y="{y + 20}" font-size="11" fill="{ink}" pointer-events="none">{_text(label)}</text>'
            )
            break
    return parts


def _statement_labels(layout: TimelineLayout, y: float) -> list[str]:
    """Numbers over the columns, from 1; where they would collide, statement 1 and those that
    took a lock go first, and the others are left out."""
    starts = {span.statement_index for bar in layout.bars for span in bar.spans}
    order = sorted(layout.columns, key=lambda column: (column.index != 0, column.index not in starts, column.index))
    placed: list[tuple[float, float]] = []
    parts = []
    for column in order:
        label = str(column.index + 1)
        centre = (column.x0 + column.x1) / 2
        half = _width(label, 11) / 2 + 2
        if centre - half < PLOT_LEFT - 6 or centre + half > WIDTH - 2:
            continue
        if any(centre - half < right and centre + half > left for left, right in placed):
            continue
        placed.append((centre - half, centre + half))
        parts.append(f'<text class="statement" x="{centre:.1f}" y="{y}" font-size="11" text-anchor="middle">{label}</text>')
    return parts


def _legend(y: float) -> tuple[list[str], float]:
    parts = []
    x = 10.0
    for kind, text in LEGEND:
        room = 17 + _width(text, 11) + 24
        if x + room > WIDTH and x > 10:
            x, y = 10.0, y + 20
        parts.append(f'<rect class="swatch" x="{x:.0f}" y="{y - 10}" width="12" height="12" fill="{COLOURS[kind][0]}"/>')
        parts.append(f'<text x="{x + 17:.0f}" y="{y}" font-size="11">{_text(text)}</text>')
        x += room
    return parts, y


def _columns(layout: TimelineLayout, axis_y: float) -> list[str]:
    """Every statement shaded, in two alternating tones; the white between is time between statements."""
    return [
        f'<rect class="column" x="{column.x0:.1f}" y="{TOP - 20}" width="{column.x1 - column.x0:.1f}" '
        f'height="{axis_y - TOP + 20}" fill="{"#ececec" if position % 2 else "#f5f5f5"}"/>'
        for position, column in enumerate(layout.columns)
    ]


def _lanes(layout: TimelineLayout, warnings: tuple[DriftWarning, ...]) -> list[str]:
    parts = []
    previous_table = None
    for number, lane in enumerate(layout.lanes):
        y = float(TOP + number * LANE_HEIGHT)
        if lane.table != previous_table and number:
            parts.append(f'<line x1="10" y1="{y}" x2="{PLOT_RIGHT}" y2="{y}" stroke="#bbbbbb"/>')
        previous_table = lane.table
        parts.append(
            f'<g class="lane" data-relation="{_text(lane.relation)}" data-mode="{_text(lane.mode)}" '
            f'data-top="{y}" data-bottom="{y + LANE_HEIGHT}">'
        )
        parts.extend(_lane_label(lane, y, _lane_drift(lane, warnings)))
        for bar in (bar for bar in layout.bars if bar.lane == number):
            parts.extend(_bar(bar, y))
        parts.append("</g>")
    return parts


def _axis(layout: TimelineLayout, axis_y: float) -> list[str]:
    """The time axis; a tick's label is left out where it would touch the previous one."""
    caption = "Time at production size" if layout.estimated else "Time on the shadow"
    parts = [
        f'<line x1="{PLOT_LEFT}" y1="{axis_y}" x2="{PLOT_RIGHT}" y2="{axis_y}" stroke="#333333"/>',
        f'<text x="10" y="{axis_y + 17}" font-size="11" fill="#444444">{caption}</text>',
    ]
    label_right = float("-inf")
    for tick in layout.ticks:
        parts.append(f'<line x1="{tick.x:.1f}" y1="{axis_y}" x2="{tick.x:.1f}" y2="{axis_y + 5}" stroke="#333333"/>')
        half = _width(tick.label, 11) / 2
        if tick.x - half > label_right + 6 and tick.x + half <= WIDTH:
            parts.append(
                f'<text class="tick" x="{tick.x:.1f}" y="{axis_y + 18}" font-size="11" text-anchor="middle">{tick.label}</text>'
            )
            label_right = tick.x + half
    return parts


def _drift_notes(report: Report, y: float) -> tuple[list[str], float]:
    """Under the axis, the drifted objects the change touches: production may lock, fail or
    take longer on them than this timeline shows, which a reader of the picture alone must see."""
    drift = report.schema_drift
    if drift is None or not drift.touched:
        return [], y
    count = len(drift.touched)
    heading = (
        f"⚠ Production has drifted: this change touches {count} drifted "
        f"{'object' if count == 1 else 'objects'} (schema snapshot {drift.snapshot}, baseline v{drift.baseline_version})"
    )
    parts = [
        f'<text class="drift-note" x="10" y="{y}" font-size="11" font-weight="bold" fill="{DRIFT_COLOUR}">'
        f"{_text(_fit(heading, WIDTH - 20, 11))}</text>"
    ]
    for w in drift.touched[:MAX_DRIFT_NOTES]:
        y += 16
        statements = ", ".join(f"#{index + 1}" for index in w.statement_indexes)
        noun = "statement" if len(w.statement_indexes) == 1 else "statements"
        line = f"{w.severity}: {w.kind} {w.name} ({w.status.replace('_', ' ')}), {noun} {statements}: {w.consequence}"
        parts.append(
            f'<text class="drift-note" x="24" y="{y}" font-size="11" fill="#444444">{_text(_fit(line, WIDTH - 34, 11))}'
            f"<title>{_text(line)}</title></text>"
        )
    if count > MAX_DRIFT_NOTES:
        y += 16
        parts.append(
            f'<text class="drift-note" x="24" y="{y}" font-size="11" fill="#444444">'
            f"{count - MAX_DRIFT_NOTES} more in the report</text>"
        )
    return parts, y + 22


def report_svg(report: Report) -> str:
    """A standalone SVG of the report's lock spans."""
    layout = timeline_layout(report, left=PLOT_LEFT, width=PLOT_RIGHT - PLOT_LEFT)
    title = "Lock timeline at production size (estimated)" if layout.estimated else "Lock timeline on the shadow (measured)"
    axis_y = float(TOP + max(len(layout.lanes), 1) * LANE_HEIGHT)
    body = _columns(layout, axis_y)
    body.append(f'<text x="10" y="{TOP - 6}" font-size="11" fill="#444444">Statement</text>')
    body.extend(_statement_labels(layout, TOP - 6))
    if not report.statements:
        body.append(f'<text x="{PLOT_LEFT}" y="{TOP + 20}">No statements ran.</text>')
    elif not layout.lanes:
        body.append(f'<text x="{PLOT_LEFT}" y="{TOP + 20}">No locks were taken: nothing waited on this change.</text>')
    warnings = report.schema_drift.touched if report.schema_drift is not None else ()
    body.extend(_lanes(layout, warnings))
    body.extend(_axis(layout, axis_y))
    y = axis_y + 42
    if layout.hidden_lanes:
        body.append(
            f'<text x="10" y="{y}" font-size="11" fill="#444444">{layout.hidden_lanes} more '
            f"{'lane' if layout.hidden_lanes == 1 else 'lanes'} not drawn (those blocking least, for the shortest time); "
            "the report lists every lock.</text>"
        )
        y += 22
    notes, y = _drift_notes(report, y)
    body.extend(notes)
    legend, y = _legend(y)
    body.extend(legend)
    height = int(y + 16)
    head = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" '
        f'font-family="{FONT}" font-size="12">',
        f"<title>{_text(title)}</title>",
        f'<rect width="{WIDTH}" height="{height}" fill="#ffffff"/>',
        f'<text x="10" y="24" font-size="15" font-weight="bold">{_text(title)}</text>',
        '<text x="10" y="44" font-size="11" fill="#444444">Each bar is a lock, from the statement that took it until its '
        "transaction released it; one lane per relation and mode.</text>",
    ]
    return "\n".join([*head, *body, "</svg>"]) + "\n"
