"""Drift at a glance: the lock timeline and the Markdown report mark the objects a change
touches that production has otherwise than the migrations say."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET

from changeapi.dryrun.contract import DriftWarning, Report, SchemaDrift
from changeapi.dryrun.render import report_markdown, report_svg
from changeapi.dryrun.render.svg import MAX_DRIFT_NOTES
from tests.support.timeline_reports import index_built_under_a_table_lock

SVG = "{http://www.w3.org/2000/svg}"


def _warning(**overrides: object) -> DriftWarning:
    values: dict[str, object] = {
        "kind": "index",
        "status": "extra",
        "severity": "medium",
        "name": "order_total_idx",
        "table": "shop_order",
        "detail": "in production, not in the migrations",
        "consequence": "an AddIndex of the same name will fail",
        "statement_indexes": (1,),
    }
    return DriftWarning(**{**values, **overrides})  # type: ignore[arg-type]


def _drifted(*warnings: DriftWarning) -> Report:
    drift = SchemaDrift(
        snapshot=7, snapshot_uploaded_at="2026-12-03T10:00:00+00:00", baseline_version=3, drifted_objects=5, touched=warnings
    )
    return dataclasses.replace(index_built_under_a_table_lock(), schema_drift=drift)


def _marked_lanes(report: Report) -> list[tuple[str | None, str | None]]:
    root = ET.fromstring(report_svg(report))
    return [
        (lane.get("data-relation"), lane.get("data-mode"))
        for lane in root.iter(f"{SVG}g")
        if lane.get("class") == "lane" and any(t.get("class") == "drift" for t in lane.iter(f"{SVG}text"))
    ]


def _notes(report: Report) -> list[str]:
    root = ET.fromstring(report_svg(report))
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == "drift-note"]


def test_the_lane_of_a_drifted_index_and_those_of_its_table_carry_a_warning_sign():
    marked = _marked_lanes(_drifted(_warning()))

    assert marked == [
        ("shop_order", "AccessExclusiveLock"),
        ("shop_order", "ShareLock"),
        ("order_total_idx", "AccessExclusiveLock"),
    ]


def test_a_drifted_column_marks_its_table_but_no_index():
    marked = _marked_lanes(_drifted(_warning(kind="column", status="missing", name="total", severity="high")))

    assert marked == [("shop_order", "AccessExclusiveLock"), ("shop_order", "ShareLock")]


def test_a_note_under_the_timeline_says_what_drifted_and_which_statements_touch_it():
    notes = _notes(_drifted(_warning()))

    assert notes[0].startswith("⚠ Production has drifted: this change touches 1 drifted object (schema snapshot 7")
    assert notes[1].startswith("medium: index order_total_idx (extra), statement #2: an AddIndex of the same name will fail")


def test_past_a_handful_of_drifted_objects_the_note_counts_the_rest():
    warnings = [_warning(name=f"idx_{n}") for n in range(MAX_DRIFT_NOTES + 3)]

    notes = _notes(_drifted(*warnings))

    assert len(notes) == 1 + MAX_DRIFT_NOTES + 1
    assert notes[-1] == "3 more in the report"


def test_a_timeline_without_touched_drift_has_no_mark_and_no_note():
    report = _drifted()

    assert (_marked_lanes(report), _notes(report)) == ([], [])


def test_a_drifted_name_that_is_markup_is_drawn_as_text():
    svg = report_svg(_drifted(_warning(name='x"/><script>alert(1)</script>', table="shop_order")))

    ET.fromstring(svg)
    assert "<script>" not in svg


def test_the_markdown_headline_counts_the_drifted_objects_the_change_touches():
    markdown = report_markdown(_drifted(_warning(), _warning(name="shop_order_pkey")), public_url="https://sg.example")

    headline_facts = markdown.splitlines()[2]
    assert "⚠️ touches 2 objects production has otherwise" in headline_facts
    assert "#### Production has drifted" in markdown


def test_the_markdown_headline_says_nothing_of_drift_the_change_does_not_touch():
    markdown = report_markdown(_drifted(), public_url="https://sg.example")

    assert "production has otherwise" not in markdown.splitlines()[2]
