"""What a browser drew of a lock timeline, and the check that it shows every lock of the report.

The geometry comes from the browser's own layout (`getBoundingClientRect`), and a bar counts
as visible only if the browser's hit test (`elementFromPoint`) finds that very bar all along
it: a bar painted over by another, even in part, or off the page, fails.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

from changeapi.dryrun.contract import LockSpan, Report
from tests.support.chromium import Browser

GEOMETRY = """
(() => {
  const svg = document.documentElement.tagName === "svg" ? document.documentElement : document.querySelector("svg");
  const origin = svg.getBoundingClientRect();
  const box = (element) => {
    const r = element.getBoundingClientRect();
    return {left: r.left, right: r.right, top: r.top, bottom: r.bottom};
  };
  const seen = (element) => {  // hit-tested every 2 px along the bar, both ends included
    const r = element.getBoundingClientRect();
    const y = (r.top + r.bottom) / 2;
    const xs = [r.right - 1];
    for (let x = r.left + 1; x < r.right - 1; x += 2) xs.push(x);
    return xs.every((x) => document.elementFromPoint(x, y) === element);
  };
  return {
    lanes: [...svg.querySelectorAll("g.lane")].map((g) => ({
      relation: g.dataset.relation, mode: g.dataset.mode,
      top: origin.top + Number(g.dataset.top), bottom: origin.top + Number(g.dataset.bottom),
    })),
    bars: [...svg.querySelectorAll("rect.lock")].map((rect) => ({
      relation: rect.dataset.relation, mode: rect.dataset.mode,
      statements: rect.dataset.statements.split(", ").map(Number),
      fill: getComputedStyle(rect).fill, seen: seen(rect), ...box(rect),
    })),
    columns: [...svg.querySelectorAll("rect.column")].map(box),
    statements: [...svg.querySelectorAll("text.statement")].map((text) => ({number: Number(text.textContent), ...box(text)})),
    legend: [...svg.querySelectorAll("rect.swatch")].map((swatch) => ({
      fill: getComputedStyle(swatch).fill, text: swatch.nextElementSibling.textContent,
    })),
  };
})()
"""

LEGEND_OF = {
    "reads_and_writes": "blocks reads and writes",
    "writes": "blocks writes (reads go on)",
    "none": "blocks nothing Django's queries do (only DDL, VACUUM)",
    "new": "created by this change: no one else sees it yet",
}


def drawn_timeline(browser: Browser) -> dict[str, Any]:
    """The geometry of the timeline on the browser's current page."""
    drawn: dict[str, Any] = browser.evaluate(GEOMETRY)
    return drawn


def _severity(span: LockSpan) -> str:
    if span.new_relation:
        return "new"
    if span.blocks_reads:
        return "reads_and_writes"
    return "writes" if span.blocks_writes else "none"


def _legend_entry(spans: list[LockSpan]) -> str:
    """The legend entry of a bar: what the most blocking of its spans blocks."""
    return LEGEND_OF[min((_severity(span) for span in spans), key=list(LEGEND_OF).index)]


def _overlap(a: dict[str, float], b: dict[str, float]) -> float:
    width = min(a["right"], b["right"]) - max(a["left"], b["left"])
    height = min(a["bottom"], b["bottom"]) - max(a["top"], b["top"])
    return max(width, 0) * max(height, 0)


def assert_every_lock_is_visible(drawn: dict[str, Any], report: Report) -> None:
    """Each span of the report is a bar the browser shows, in the lane of its relation and mode
    (and each transaction's held lock has its lane),
    starting in the column of the statement that took it, in the colour the legend gives for
    what it blocks; no bar overlaps another, and the statement numbers run from 1 without
    overlapping."""
    positions = {statement.index: position for position, statement in enumerate(report.statements)}
    legend = {entry["text"]: entry["fill"] for entry in drawn["legend"]}
    assert len(drawn["columns"]) == len(report.statements)
    for span in report.lock_spans:
        where = f"{span.mode} on {span.relation} taken by statement {span.statement_index + 1}"
        lanes = [lane for lane in drawn["lanes"] if (lane["relation"], lane["mode"]) == (span.relation, span.mode)]
        assert len(lanes) == 1, f"{where}: {len(lanes)} lanes"
        bars = [
            bar
            for bar in drawn["bars"]
            if (bar["relation"], bar["mode"]) == (span.relation, span.mode) and span.statement_index + 1 in bar["statements"]
        ]
        assert len(bars) == 1, f"{where}: {len(bars)} bars"
        bar, lane, column = bars[0], lanes[0], drawn["columns"][positions[span.statement_index]]
        assert lane["top"] <= bar["top"] < bar["bottom"] <= lane["bottom"], f"{where}: drawn outside its lane"
        if bar["statements"][0] == span.statement_index + 1:
            assert abs(bar["left"] - column["left"]) < 0.6, f"{where}: starts at {bar['left']}, its column at {column['left']}"
        else:
            assert bar["left"] <= column["left"] <= bar["right"], f"{where}: its column is not under the bar"
        assert bar["right"] - bar["left"] >= 2.5, f"{where}: too narrow to see"
        assert bar["seen"], f"{where}: covered somewhere along it, by the browser's hit test"
        entry = _legend_entry(
            [
                other
                for other in report.lock_spans
                if (other.relation, other.mode) == (span.relation, span.mode) and other.statement_index + 1 in bar["statements"]
            ]
        )
        assert bar["fill"] == legend[entry], f"{where}: not in the colour of '{entry}'"
    lanes = {(lane["relation"], lane["mode"]) for lane in drawn["lanes"]}
    for transaction in report.transactions:
        for held in transaction.held:
            assert (held.table, held.mode) in lanes, (
                f"{held.mode} held on {held.table} by transaction {transaction.id} has no lane"
            )
    for a, b in combinations(drawn["bars"], 2):
        assert _overlap(a, b) < 1.0, f"{a['mode']} on {a['relation']} overlaps {b['mode']} on {b['relation']}"
    labels = sorted(drawn["statements"], key=lambda label: label["left"])
    assert labels and labels[0]["number"] == 1
    assert [label["number"] for label in labels] == sorted(label["number"] for label in labels)
    assert all(left["right"] <= right["left"] for left, right in zip(labels, labels[1:], strict=False))
