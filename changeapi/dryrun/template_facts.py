"""What a template holds beyond its schema: seeded row counts and bytes, and the calibration.

Stored as the template database's comment (JSON), so the facts live and die with the
template on its own server: every worker reads them from there, a rebuilt template brings
its own, and the service's database needs no table for them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from changeapi.dryrun.calibration import Calibration
from changeapi.shadow.servers import ShadowServer


@dataclass
class TemplateFacts:
    """Seeded sizes per table (rows, total bytes) and the time model's calibration."""

    seeded: dict[str, dict[str, int]] = field(default_factory=dict)
    seed_warnings: list[str] = field(default_factory=list)
    seed_seconds: float = 0.0
    seed_max_rows: int = 0
    calibration: Calibration | None = None
    # Per seeded table, which columns uploaded statistics shaped ("stats") and which the defaults did ("defaults").
    seed_columns: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def as_json(self) -> str:
        return json.dumps(
            {
                "seeded": self.seeded,
                "seed_warnings": self.seed_warnings,
                "seed_seconds": self.seed_seconds,
                "seed_max_rows": self.seed_max_rows,
                "calibration": self.calibration.as_dict() if self.calibration else None,
                "seed_columns": self.seed_columns,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str | None) -> TemplateFacts:
        if not text:
            return cls()
        try:
            data: dict[str, Any] = json.loads(text)
        except ValueError:
            return cls()
        calibration = data.get("calibration")
        return cls(
            seeded=data.get("seeded", {}),
            seed_warnings=data.get("seed_warnings", []),
            seed_seconds=data.get("seed_seconds", 0.0),
            seed_max_rows=data.get("seed_max_rows", 0),
            calibration=Calibration.from_dict(calibration) if calibration else None,
            seed_columns=data.get("seed_columns", {}),
        )


def facts_write(conn: psycopg.Connection, dbname: str, facts: TemplateFacts) -> None:
    """Record the facts on the database being built (the owner may comment on it)."""
    conn.execute(sql.SQL("COMMENT ON DATABASE {} IS {}").format(sql.Identifier(dbname), sql.Literal(facts.as_json())))


def facts_read(server: ShadowServer, template: str) -> TemplateFacts:
    """The facts of a template, or empty facts for a template built without seeding."""
    with server.admin_connect() as conn:
        row = conn.execute(
            "SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [template]
        ).fetchone()
    return TemplateFacts.from_json(row[0] if row else None)
