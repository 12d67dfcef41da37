"""The catalog queries as docs/drift.md prints them, and the snapshots they read from real
MariaDB databases and SQLite files: what a team uploads, run exactly as documented."""

from __future__ import annotations

import json
import re
import sqlite3
from pathlib import Path
from typing import Any

from tests.support.mariadb import MARIADB

DRIFT_PAGE = Path(__file__).resolve().parents[2] / "docs" / "drift.md"


def documented_queries() -> dict[str, str]:
    """The page's SQL blocks, in the order it prints them: PostgreSQL's, MariaDB's, MySQL's, SQLite's."""
    blocks = re.findall(r"```sql\n(.*?)```", DRIFT_PAGE.read_text(), re.S)
    return dict(zip(("postgresql", "mariadb", "mysql", "sqlite"), blocks, strict=False))


def mariadb_snapshot(database: str) -> dict[str, Any]:
    """The documented MariaDB query's output on `database`, as `mariadb --database=… -N --raw` prints it."""
    connection = MARIADB.admin_connect()
    try:
        cursor = connection.cursor()
        cursor.execute(f"USE `{database}`")
        cursor.execute(documented_queries()["mariadb"])
        return dict(json.loads(cursor.fetchone()[0]))
    finally:
        connection.close()


def sqlite_snapshot(path: Path) -> dict[str, Any]:
    """The documented SQLite query's output on the file, opened read-only as `sqlite3 -readonly` does."""
    connection = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return dict(json.loads(connection.execute(documented_queries()["sqlite"]).fetchone()[0]))
    finally:
        connection.close()
