"""The lock timeline as Chromium draws it: every lock of the report a visible bar in its lane
and column, nothing painted over anything else."""

from __future__ import annotations

import pytest

from changeapi.dryrun.render import report_svg
from tests.factories import LockFactory, StatementTraceFactory
from tests.support.drawn_timeline import assert_every_lock_is_visible, drawn_timeline
from tests.support.timeline_reports import index_built_under_a_table_lock, many_statements, report_of

pytestmark = pytest.mark.slow  # a browser starts: collected first, see tests/conftest.py


def _drawn(browser, tmp_path, report):  # noqa: ANN001, ANN202
    page = tmp_path / "timeline.svg"
    page.write_text(report_svg(report))
    browser.open(page.as_uri())
    return drawn_timeline(browser)


def test_a_share_lock_taken_later_leaves_the_access_exclusive_lock_visible(browser, tmp_path):
    report = index_built_under_a_table_lock()

    assert_every_lock_is_visible(_drawn(browser, tmp_path, report), report)


def test_two_hundred_statements_on_a_few_tables_draw_every_lock_visible(browser, tmp_path):
    report = many_statements(200, tables=5)

    assert_every_lock_is_visible(_drawn(browser, tmp_path, report), report)


def test_the_drawing_fits_its_page_without_scrolling_sideways(browser, tmp_path):
    _drawn(browser, tmp_path, many_statements(200))

    assert browser.evaluate("document.documentElement.getBoundingClientRect().width") <= 960
    assert browser.evaluate("[...document.querySelectorAll('text')].every((t) => t.getBoundingClientRect().right <= 960)")


def test_the_longest_names_postgresql_allows_stay_in_the_label_column(browser, tmp_path):
    table, index = "t" * 63, "i" * 63
    report = report_of(
        [
            StatementTraceFactory(
                index=0,
                locks=(LockFactory(relation=table), LockFactory(relation=index, relation_kind="index", table=table)),
            )
        ]
    )

    drawn = _drawn(browser, tmp_path, report)

    assert_every_lock_is_visible(drawn, report)
    assert browser.evaluate("[...document.querySelectorAll('text.relation')].every((t) => t.getBoundingClientRect().right < 290)")
