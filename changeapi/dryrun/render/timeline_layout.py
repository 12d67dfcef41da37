"""Where each part of the lock timeline goes: lanes, statement columns, bars and axis ticks.

Kept apart from the drawing so the geometry can be checked on its own. One lane per lock
held (relation and mode), so no bar is ever drawn over another: in one transaction a
relation is locked in a given mode once, and transactions follow each other. Columns are
the statements, on the production timeline when the report has estimates: each column is
at least a few pixels wide, so a statement of a millisecond beside one of minutes still
shows, and time is to scale apart from that floor.
"""

from __future__ import annotations

import bisect
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from changeapi.dryrun.analysis.timeline import production_timeline
from changeapi.dryrun.contract import LockSpan, Report
from changeapi.dryrun.tracing import LOCK_STRENGTH

MAX_LANES = 40
"""Above this many lanes those that block least, for the shortest time, are left out (and
counted), so the drawing stays a size a pull request comment can show; the report itself
lists every span."""

MIN_BAR_WIDTH = 3.0
MAX_COLUMN_FLOOR = 24.0
FLOOR_SHARE = 0.6
"""The floors of all columns together take at most this share of the plot; the rest is time."""

SEVERITY_ORDER = ("reads_and_writes", "writes", "none", "new")


@dataclass(frozen=True, slots=True, kw_only=True)
class Lane:
    """One lock held: a mode on a relation (the table itself, or one of its indexes)."""

    table: str
    relation: str
    relation_kind: str
    mode: str
    severity: str
    spans: tuple[LockSpan, ...]

    @property
    def is_table(self) -> bool:
        return self.relation == self.table


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    """A statement (`index` as in the report, from 0) and its horizontal extent."""

    index: int
    x0: float
    x1: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Bar:
    """The lock of a lane held without a break: one span, or spans that overlap (a statement
    that rebuilt an index a previous one locked holds the same mode on its new copy)."""

    spans: tuple[LockSpan, ...]
    lane: int
    x0: float
    x1: float
    held_ms: float

    @property
    def statement_index(self) -> int:
        return self.spans[0].statement_index


@dataclass(frozen=True, slots=True, kw_only=True)
class Tick:
    ms: float
    x: float
    label: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TimelineLayout:
    estimated: bool
    lanes: tuple[Lane, ...]
    hidden_lanes: int
    columns: tuple[Column, ...]
    bars: tuple[Bar, ...]
    ticks: tuple[Tick, ...]
    horizon_ms: float


def severity(span: LockSpan) -> str:
    """What the lock stops: reads and writes, writes only, or nothing Django's queries do
    (only DDL and maintenance wait); a relation the change created blocks nobody."""
    if span.new_relation:
        return "new"
    if span.blocks_reads:
        return "reads_and_writes"
    if span.blocks_writes:
        return "writes"
    return "none"


def mode_name(mode: str) -> str:
    """`AccessExclusiveLock` as PostgreSQL's documentation writes it: `ACCESS EXCLUSIVE`."""
    if re.fullmatch(r"(?:[A-Z][a-z]+)+Lock", mode):
        return " ".join(re.findall(r"[A-Z][a-z]+", mode[: -len("Lock")])).upper()
    return mode


def nice_step(raw: float) -> float:
    """The smallest of 1, 2 or 5 × 10^k that is at least `raw`."""
    if raw <= 0:
        return 1.0
    exponent = math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        step = factor * 10.0**exponent
        if step >= raw * (1 - 1e-9):
            return step
    return 10.0 ** (exponent + 1)


def _number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def duration_label(ms: float) -> str:
    """`0.4 ms`, `12 ms`, `1.5 s`, `390 s`: two or three significant figures."""
    if ms >= 1000:
        return f"{_number(ms / 1000, 0 if ms >= 10_000 else 1)} s"
    return f"{_number(ms, 0 if ms >= 10 else 1 if ms >= 1 else 2)} ms"


def tick_label(ms: float, step: float, horizon: float) -> str:
    """All ticks in one unit (seconds from two seconds on), with the decimals the step needs."""
    if ms == 0:
        return "0"
    unit, divisor = ("s", 1000.0) if horizon >= 2000 else ("ms", 1.0)
    decimals = max(0, -math.floor(math.log10(step / divisor) + 1e-9))
    return f"{_number(ms / divisor, decimals)} {unit}"


class _Scale:
    """Maps a moment of the run to x: each statement gets a floor width, time the rest."""

    def __init__(self, bounds: Sequence[tuple[float, float]], horizon: float, left: float, width: float) -> None:
        self._starts = [start for start, _ in bounds]
        self._ends = [end for _, end in bounds]
        count = len(bounds)
        self._floor = min(MAX_COLUMN_FLOOR, FLOOR_SHARE * width / count) if count else 0.0
        self._per_ms = (width - count * self._floor) / horizon
        self._left = left

    def column(self, index: int) -> tuple[float, float]:
        x0 = self._left + self._floor * index + self._per_ms * self._starts[index]
        x1 = self._left + self._floor * (index + 1) + self._per_ms * self._ends[index]
        return x0, x1

    def x(self, ms: float) -> float:
        done = bisect.bisect_right(self._ends, ms)
        x = self._left + self._floor * done + self._per_ms * ms
        if done < len(self._starts) and self._starts[done] < ms < self._ends[done]:
            x += self._floor * (ms - self._starts[done]) / (self._ends[done] - self._starts[done])
        return x


def _lanes(report: Report) -> list[Lane]:
    kinds = {
        (statement.index, lock.relation): lock.relation_kind for statement in report.statements for lock in statement.locks or ()
    }
    grouped: dict[tuple[str, str], list[LockSpan]] = {}
    for span in report.lock_spans:
        grouped.setdefault((span.relation, span.mode), []).append(span)
    table_order: dict[str, int] = {}
    relation_order: dict[str, int] = {}
    for span in report.lock_spans:
        table_order.setdefault(span.table or span.relation, len(table_order))
        relation_order.setdefault(span.relation, len(relation_order))
    lanes = []
    for (relation, mode), spans in grouped.items():
        first = spans[0]
        table = first.table or relation
        kind = kinds.get((first.statement_index, relation)) or ("table" if relation == table else "relation")
        worst = min((severity(span) for span in spans), key=SEVERITY_ORDER.index)
        lanes.append(Lane(table=table, relation=relation, relation_kind=kind, mode=mode, severity=worst, spans=tuple(spans)))
    lanes.sort(
        key=lambda lane: (
            table_order[lane.table],
            not lane.is_table,
            relation_order[lane.relation],
            -LOCK_STRENGTH.get(lane.mode, len(LOCK_STRENGTH)),
        )
    )
    return lanes


def _kept(lanes: list[Lane], held: Callable[[LockSpan], float]) -> list[Lane]:
    """The lanes that fit: those that block most, and then longest; drawn in their usual order."""
    if len(lanes) <= MAX_LANES:
        return lanes
    ranked = sorted(
        range(len(lanes)),
        key=lambda i: (SEVERITY_ORDER.index(lanes[i].severity), -max(held(span) for span in lanes[i].spans), i),
    )
    keep = set(ranked[:MAX_LANES])
    return [lane for i, lane in enumerate(lanes) if i in keep]


def _ticks(scale: _Scale, horizon: float) -> list[Tick]:
    step = nice_step(horizon / 8)
    count = int(horizon / step + 1e-9)
    return [Tick(ms=i * step, x=scale.x(i * step), label=tick_label(i * step, step, horizon)) for i in range(count + 1)]


def _widened(bars: list[Bar]) -> list[Bar]:
    """Bars at least `MIN_BAR_WIDTH` wide, so a lock of a millisecond still shows, but never
    reaching into the next bar of their lane."""
    widened = []
    for position, bar in enumerate(bars):
        following = next((other.x0 for other in bars[position + 1 :] if other.lane == bar.lane), math.inf)
        x1 = min(max(bar.x1, bar.x0 + MIN_BAR_WIDTH), max(following, bar.x1))
        widened.append(replace(bar, x1=x1))
    return widened


def timeline_layout(report: Report, *, left: float, width: float) -> TimelineLayout:
    """Lanes, columns, bars and ticks of the report's lock timeline, over `width` pixels from `left`."""
    estimated = report.estimation is not None and report.estimation.estimated
    if estimated:
        bounds = production_timeline(report.statements)
    else:
        bounds = [(statement.started_ms, statement.end_ms) for statement in report.statements]

    def span_bounds(span: LockSpan) -> tuple[float, float]:
        return (span.estimated_from_ms, span.estimated_to_ms) if estimated else (span.from_ms, span.to_ms)

    horizon = max([end for _, end in bounds] + [span_bounds(span)[1] for span in report.lock_spans] + [0.0])
    if horizon <= 0:
        horizon = 1.0
    scale = _Scale(bounds, horizon, left, width)
    all_lanes = _lanes(report)
    lanes = _kept(all_lanes, lambda span: span.estimated_held_ms if estimated else span.held_ms)
    columns = [Column(index=i, x0=x0, x1=x1) for i, (x0, x1) in ((i, scale.column(i)) for i in range(len(bounds)))]
    positions = {statement.index: position for position, statement in enumerate(report.statements)}

    def bar(lane: int, spans: list[LockSpan], start: float, end: float) -> Bar:
        position = positions.get(spans[0].statement_index)
        x0 = columns[position].x0 if position is not None else scale.x(start)
        return Bar(spans=tuple(spans), lane=lane, x0=x0, x1=max(scale.x(end), x0), held_ms=end - start)

    bars = []
    for number, lane in enumerate(lanes):
        group: list[LockSpan] = []
        group_start = group_end = 0.0
        for span in sorted(lane.spans, key=lambda span: span_bounds(span)[0]):
            start, end = span_bounds(span)
            if group and start < group_end:
                group.append(span)
                group_end = max(group_end, end)
                continue
            if group:
                bars.append(bar(number, group, group_start, group_end))
            group, group_start, group_end = [span], start, end
        if group:
            bars.append(bar(number, group, group_start, group_end))
    bars = _widened(bars)
    return TimelineLayout(
        estimated=estimated,
        lanes=tuple(lanes),
        hidden_lanes=len(all_lanes) - len(lanes),
        columns=tuple(columns),
        bars=tuple(bars),
        ticks=tuple(_ticks(scale, horizon)),
        horizon_ms=horizon,
    )
