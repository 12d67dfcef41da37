"""Class each traced statement by the work it does to existing data.

The class decides how its time grows with table size: catalog-only statements take the same
time at any size; scans, validations, rewrites, index builds and backfills grow with the
bytes of the tables they touch. Evidence comes first from the database (a new relfilenode,
a grown seq_scan counter, PostgreSQL's own debug1 messages), then from the parsed statement.
Work on a table created in the same run, by an earlier statement or by the statement
itself (a `CREATE TABLE` builds the indexes of its primary key and unique columns), touches
no production rows and is catalog-only; so is work on those tables' indexes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from changeapi.dryrun.contract import StatementTrace

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


@dataclass(frozen=True, slots=True)
class Classification:
    """A statement's class of work, the existing tables it works on, and what says so."""

    work_class: str
    tables: tuple[str, ...]
    evidence: str


def _existing(names: Iterable[str | None], new_relations: set[str]) -> tuple[str, ...]:
    seen: list[str] = []
    for name in names:
        if name and name not in new_relations and name not in seen:
            seen.append(name)
    return tuple(seen)


def classify_statement(statement: StatementTrace, new_relations: set[str]) -> Classification:
    """The class of work of one statement of the trace.

    `new_relations` are relations created by earlier statements of the same run; the
    statement's own `created_relations` count as new too.
    """
    new_relations = new_relations | set(statement.created_relations)
    events = statement.events
    command = statement.command
    forms_tables = statement.target_tables
    scans = tuple(s.table for s in statement.sequential_scans)
    rewritten = _existing((*statement.rewrites, *(e.table for e in events if e.kind == "rewrite")), new_relations)
    if rewritten:
        return Classification(REWRITE, rewritten, "new relfilenode / 'rewriting table'")
    built_on = _existing((e.table for e in events if e.kind == "index_build"), new_relations)
    if command in ("CREATE INDEX", "CREATE UNIQUE INDEX", "REINDEX") or built_on:
        tables = _existing(built_on or forms_tables or scans, new_relations)
        if tables:
            if statement.concurrently:
                return Classification(CONCURRENT_INDEX_BUILD, tables, "CREATE INDEX CONCURRENTLY")
            return Classification(INDEX_BUILD, tables, "'building index' / CREATE INDEX")
    if command in ("UPDATE", "DELETE", "INSERT"):
        tables = _existing(forms_tables, new_relations)
        if tables:
            return Classification(BACKFILL, tables, f"{command} of existing rows")
    verified = _existing((e.table for e in events if e.kind == "verify"), new_relations)
    fk_checked = any(e.kind == "fk_validation" for e in events)
    if verified or fk_checked:
        tables = _existing((*verified, *(forms_tables if fk_checked else ()), *scans), new_relations)
        if tables:
            return Classification(VALIDATION, tables, "'verifying table' / 'validating foreign key'")
    scanned = _existing(scans, new_relations)
    if scanned:
        return Classification(SCAN, scanned, "sequential scan counted")
    return Classification(CATALOG_ONLY, (), "no rewrite, scan, index build or row change")
