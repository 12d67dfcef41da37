"""Outside the report contract, no code reads or builds a report by its JSON keys: the engine
builds the typed report and everything reads its attributes, so mypy sees every use and a
renamed field cannot be missed."""

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
    "transactions",
    "lock_spans",
    "lock_queue",
    "reversibility",
    "access_patterns",
    "safer_alternative",
)
_KEY = "|".join(REPORT_KEYS)
INDEXING = re.compile(rf"""\[\s*["']({_KEY})["']\s*\]|\.get\(\s*["']({_KEY})["']""")
CONTRACT = ROOT / "changeapi" / "dryrun" / "contract"
# The command-line client is a client of the HTTP API: it reads the published JSON, imports
# nothing of the service (an import contract says so) and so has no typed report to read.
CLIENT = ROOT / "changeapi" / "cli"


def _sources() -> list[Path]:
    paths = [*(ROOT / "changeapi").rglob("*.py"), *(ROOT / "approvals").rglob("*.py")]
    return [p for p in paths if CONTRACT not in p.parents and CLIENT not in p.parents and "migrations" not in p.parts]


def test_no_module_outside_the_contract_indexes_a_report_by_key():
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if INDEXING.search(line)
    ]

    assert hits == []
