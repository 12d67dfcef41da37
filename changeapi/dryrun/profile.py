"""Production figures a dry-run is judged against: table sizes, and optional traffic per table.

Plain data, built by the service layer from uploaded table stats, so the engine never reads
the service's own database. Only sizes, column statistics (and the seed cap) decide how a
template is seeded, so only they enter the digest that names the seeded template.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from changeapi.shadow.column_stats import ColumnFigures


@dataclass(frozen=True)
class TableFigures:
    """One production table: its size, its columns' statistics and index sizes (empty when not
    uploaded), and how busy it is (None when not uploaded)."""

    rows: int
    total_bytes: int
    queries_per_second: float | None = None
    writes_per_second: float | None = None
    oldest_transaction_seconds: float | None = None
    columns: dict[str, ColumnFigures] = field(default_factory=dict)
    index_bytes: dict[str, int] = field(default_factory=dict)

    @property
    def has_activity(self) -> bool:
        return self.queries_per_second is not None or self.oldest_transaction_seconds is not None


@dataclass(frozen=True)
class ProductionProfile:
    """Every table the team uploaded figures for, keyed by table name."""

    tables: dict[str, TableFigures] = field(default_factory=dict)
    seed_max_rows: int = 100_000

    @property
    def has_sizes(self) -> bool:
        return bool(self.tables)

    def seed_rows(self) -> dict[str, int]:
        """Rows to seed per table: the production count, capped per table.

        Capping per table, not scaling all tables by one factor, keeps every large table
        large enough for its scans and sorts to take measurable time.
        """
        return {name: min(figures.rows, self.seed_max_rows) for name, figures in sorted(self.tables.items())}

    def seed_columns(self) -> dict[str, dict[str, ColumnFigures]]:
        """Per table, the uploaded statistics of its columns (tables without any are left out)."""
        return {name: dict(t.columns) for name, t in sorted(self.tables.items()) if t.columns}

    def seed_digest(self) -> str:
        """A digest of what seeding depends on: table sizes, column statistics and the cap (not
        the traffic). Tables without column statistics digest as they always did, so uploads
        that never send them keep their templates."""
        payload: dict[str, object] = {
            "cap": self.seed_max_rows,
            "tables": {name: [t.rows, t.total_bytes] for name, t in sorted(self.tables.items())},
        }
        columns = {
            name: {column: figures.as_list() for column, figures in sorted(by_column.items())}
            for name, by_column in self.seed_columns().items()
        }
        if columns:
            payload["columns"] = columns
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def seeded_template_name(base_name: str, profile: ProductionProfile | None) -> str:
    """The template name for a baseline seeded per `profile`: the base name plus a digest.

    Without sizes the template is the plain, empty one, so projects without stats keep
    sharing it.
    """
    if profile is None or not profile.has_sizes:
        return base_name
    return f"{base_name}_s{profile.seed_digest()[:10]}"
