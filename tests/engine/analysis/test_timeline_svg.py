"""The lock timeline's drawing: lanes, numbered statements, round ticks, legend, size and escaping."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET

import pytest

from changeapi.dryrun.render import report_png, report_svg
from changeapi.dryrun.render.timeline_layout import MAX_LANES, nice_step, tick_label, timeline_layout
from tests.factories import LockFactory, StatementTraceFactory
from tests.support.timeline_reports import index_built_under_a_table_lock, many_statements, report_of

SVG = "{http://www.w3.org/2000/svg}"


def _drawing(report) -> ET.Element:  # noqa: ANN001
    return ET.fromstring(report_svg(report))


def _texts(root: ET.Element, css_class: str | None = None) -> list[str]:
    return ["".join(text.itertext()) for text in root.iter(f"{SVG}text") if css_class is None or text.get("class") == css_class]


def _lanes(root: ET.Element) -> list[tuple[str, str]]:
    return [(lane.get("data-relation"), lane.get("data-mode")) for lane in root.iter(f"{SVG}g") if lane.get("class") == "lane"]


def test_every_lock_held_has_a_lane_of_its_own_with_the_strongest_of_a_table_on_top():
    lanes = _lanes(_drawing(index_built_under_a_table_lock()))

    assert lanes == [
        ("shop_order", "AccessExclusiveLock"),
        ("shop_order", "ShareLock"),
        ("order_total_idx", "AccessExclusiveLock"),
        ("shop_order_pkey", "AccessExclusiveLock"),
        ("shop_customer", "ShareRowExclusiveLock"),
        ("shop_customer", "ShareUpdateExclusiveLock"),
    ]


def test_an_index_is_drawn_in_its_own_lane_labelled_as_an_index():
    texts = _texts(_drawing(index_built_under_a_table_lock()))

    assert "index order_total_idxindex order_total_idx" in texts  # the label, and its full name as a title
    assert "ACCESS EXCLUSIVE" in texts and "SHARE UPDATE EXCLUSIVE" in texts


def test_no_bar_is_drawn_over_another():
    layout = timeline_layout(index_built_under_a_table_lock(), left=0, width=600)

    for lane in {bar.lane for bar in layout.bars}:
        bars = sorted((bar for bar in layout.bars if bar.lane == lane), key=lambda bar: bar.x0)
        assert all(left.x1 <= right.x0 + 1e-6 for left, right in zip(bars, bars[1:], strict=False))


def test_statements_are_labelled_columns_numbered_from_one():
    root = _drawing(index_built_under_a_table_lock())

    assert _texts(root, "statement") == ["1", "2", "3", "4"]
    assert "#1 · held 72 ms" in _texts(root)


@pytest.mark.parametrize("horizon", [0.7, 39.4, 1234.0, 389_412.0])
def test_axis_ticks_fall_on_round_values(horizon):
    step = nice_step(horizon / 8)
    mantissa = step / 10 ** math.floor(math.log10(step))

    assert round(mantissa, 9) in (1, 2, 5)
    assert horizon / step <= 8


def test_tick_labels_read_as_round_durations():
    assert [tick_label(ms, 10, 39.4) for ms in (0, 10, 20, 30)] == ["0", "10 ms", "20 ms", "30 ms"]
    assert [tick_label(ms, 0.1, 0.7) for ms in (0.1, 0.5)] == ["0.1 ms", "0.5 ms"]
    assert [tick_label(ms, 50_000, 389_412) for ms in (50_000, 350_000)] == ["50 s", "350 s"]
    assert [tick_label(ms, 500, 2_400) for ms in (500, 1000)] == ["0.5 s", "1 s"]


def test_the_legend_says_what_each_colour_blocks():
    texts = _texts(_drawing(index_built_under_a_table_lock()))

    assert {"blocks reads and writes", "blocks writes (reads go on)"} <= set(texts)
    assert "blocks nothing Django's queries do (only DDL, VACUUM)" in texts


def test_a_report_without_locks_says_nothing_waited():
    report = report_of([StatementTraceFactory(index=0, locks=())])

    assert "No locks were taken: nothing waited on this change." in _texts(_drawing(report))


def test_a_report_without_statements_still_draws():
    assert "No statements ran." in _texts(_drawing(report_of([])))


def test_one_statement_fills_the_plot():
    report = report_of([StatementTraceFactory(index=0, locks=(LockFactory(),))])
    layout = timeline_layout(report, left=0, width=600)

    assert _texts(_drawing(report), "statement") == ["1"]
    assert layout.bars[0].x0 == 0 and layout.bars[0].x1 == pytest.approx(600)


def test_two_hundred_statements_stay_a_bounded_size_and_keep_the_longest_held_locks():
    root = _drawing(many_statements(200))

    assert len(_lanes(root)) == MAX_LANES
    assert int(root.get("height")) < 1600 and root.get("width") == "960"
    assert "160 more lanes not drawn (those blocking least, for the shortest time); the report lists every lock." in _texts(root)
    assert ("app_table_0", "AccessExclusiveLock") in _lanes(root) and ("app_table_7", "AccessExclusiveLock") in _lanes(root)
    assert ("app_table_199", "AccessExclusiveLock") not in _lanes(root)


def test_statement_numbers_never_collide_when_columns_are_narrow():
    root = _drawing(many_statements(200, tables=5))
    labels = sorted(
        (float(text.get("x")), len(text.text)) for text in root.iter(f"{SVG}text") if text.get("class") == "statement"
    )

    assert len(labels) > 10
    for (left, left_digits), (right, right_digits) in zip(labels, labels[1:], strict=False):
        assert right - left >= (left_digits + right_digits) / 2 * 11 * 0.62


def test_names_from_users_are_escaped():
    hostile = 'shop"><script>alert(1)</script>&\x01'
    report = report_of([StatementTraceFactory(index=0, locks=(LockFactory(relation=hostile),))])

    root = _drawing(report)

    assert not list(root.iter(f"{SVG}script"))
    assert ('shop"><script>alert(1)</script>&\ufffd', "AccessExclusiveLock") in _lanes(root)


def test_the_png_is_the_drawing_rasterised():
    png = report_png(index_built_under_a_table_lock())

    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert int.from_bytes(png[16:20], "big") == 2 * 960  # drawn at twice the size, for sharp screens
