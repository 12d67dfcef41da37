"""Class each traced statement by the work it does to existing data.

The class decides how its time grows with table size: catalog-only statements take the same
time at any size; scans, validations, rewrites, index builds and backfills grow with the
bytes of the tables they touch. Evidence comes first from the database (a new relfilenode,
a grown seq_scan counter, PostgreSQL's own debug1 messages), then from the parsed statement.
Work on a table created earlier in the same run touches no production rows and is
catalog-only.
"""

from __future__ import annotations

from typing import Any

CATALOG_ONLY = "catalog_only"
SCAN = "scan"
VALIDATION = "validation"
REWRITE = "rewrite"
INDEX_BUILD = "index_build"
CONCURRENT_INDEX_BUILD = "concurrent_index_build"
BACKFILL = "backfill"

WORK_CLASSES = (CATALOG_ONLY, SCAN, VALIDATION, REWRITE, INDEX_BUILD, CONCURRENT_INDEX_BUILD, BACKFILL)

# The calibrated growth law each class is scaled by.
SCALING_CLASS = {
    SCAN: "validation",
    VALIDATION: "validation",
    REWRITE: "rewrite",
    INDEX_BUILD: "index_build",
    CONCURRENT_INDEX_BUILD: "index_build",
    BACKFILL: "backfill",
}


def _existing(names: list[str], new_relations: set[str]) -> list[str]:
    seen: list[str] = []
    for name in names:
        if name and name not in new_relations and name not in seen:
            seen.append(name)
    return seen


def classify_statement(statement: dict[str, Any], new_relations: set[str]) -> dict[str, Any]:
    """{"work_class", "tables", "evidence"} for one statement of the trace.

    `new_relations` are relations created by earlier statements of the same run.
    """
    events = statement.get("events", [])
    command = statement.get("command", "")
    forms_tables = statement.get("target_tables", [])
    scans = [s["table"] for s in statement.get("sequential_scans", [])]
    rewritten = _existing(statement.get("rewrites", []) + [e["table"] for e in events if e["kind"] == "rewrite"], new_relations)
    if rewritten:
        return {"work_class": REWRITE, "tables": rewritten, "evidence": "new relfilenode / 'rewriting table'"}
    built_on = _existing([e["table"] for e in events if e["kind"] == "index_build"], new_relations)
    if command in ("CREATE INDEX", "CREATE UNIQUE INDEX", "REINDEX") or built_on:
        tables = _existing(built_on or forms_tables or scans, new_relations)
        if tables:
            if statement.get("concurrently"):
                return {"work_class": CONCURRENT_INDEX_BUILD, "tables": tables, "evidence": "CREATE INDEX CONCURRENTLY"}
            return {"work_class": INDEX_BUILD, "tables": tables, "evidence": "'building index' / CREATE INDEX"}
    if command in ("UPDATE", "DELETE", "INSERT"):
        tables = _existing(forms_tables, new_relations)
        if tables:
            return {"work_class": BACKFILL, "tables": tables, "evidence": f"{command} of existing rows"}
    verified = _existing([e["table"] for e in events if e["kind"] == "verify"], new_relations)
    fk_checked = any(e["kind"] == "fk_validation" for e in events)
    if verified or fk_checked:
        tables = _existing(verified + (forms_tables if fk_checked else []) + scans, new_relations)
        if tables:
            return {"work_class": VALIDATION, "tables": tables, "evidence": "'verifying table' / 'validating foreign key'"}
    scanned = _existing(scans, new_relations)
    if scanned:
        return {"work_class": SCAN, "tables": scanned, "evidence": "sequential scan counted"}
    return {"work_class": CATALOG_ONLY, "tables": [], "evidence": "no rewrite, scan, index build or row change"}
