"""Outside the report contract, no code reads a report by its JSON keys: it reads the typed
report's attributes, so mypy sees every use and a renamed field cannot be missed."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REPORT_KEYS = (
    "statements",
    "findings",
    "summary",
    "estimate",
    "estimation",
    "locks",
    "held_locks",
    "lock_spans",
    "lock_queue",
    "reversibility",
    "access_patterns",
    "safer_alternative",
)
_KEY = "|".join(REPORT_KEYS)
INDEXING = re.compile(rf"""\[\s*["']({_KEY})["']\s*\]|\.get\(\s*["']({_KEY})["']""")
CONTRACT = ROOT / "changeapi" / "dryrun" / "contract"
# The engine modules that still build the report from the tracer's raw statements; they
# leave this list as they build the contract's values directly.
BUILT_FROM_THE_RAW_TRACE = {
    "changeapi/dryrun/engine.py",
    "changeapi/dryrun/report.py",
    "changeapi/dryrun/analysis/rules_compat.py",
    "changeapi/dryrun/analysis/rules_locking.py",
    "changeapi/dryrun/analysis/timeline.py",
    "changeapi/dryrun/access_patterns/compare.py",
}


def _sources() -> list[Path]:
    paths = [*(ROOT / "changeapi").rglob("*.py"), *(ROOT / "approvals").rglob("*.py")]
    return [p for p in paths if CONTRACT not in p.parents and "migrations" not in p.parts]


def test_no_module_outside_the_contract_indexes_a_report_by_key():
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        if path.relative_to(ROOT).as_posix() not in BUILT_FROM_THE_RAW_TRACE
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INDEXING.search(line)
    ]

    assert hits == []


def test_the_modules_still_building_from_the_raw_trace_are_listed_only_while_they_do():
    still_indexing = {
        path.relative_to(ROOT).as_posix()
        for path in _sources()
        if path.relative_to(ROOT).as_posix() in BUILT_FROM_THE_RAW_TRACE and INDEXING.search(path.read_text())
    }

    assert still_indexing == BUILT_FROM_THE_RAW_TRACE
