"""Production column statistics as the seeder reads them: the figures of `pg_stats`, never values."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ColumnFigures:
    """One production column as `pg_stats` describes it: shares and widths, never values.

    `n_distinct` has PostgreSQL's meaning: above 0 a count of distinct values, between -1
    and 0 minus the fraction of rows that are distinct (-1: every row differs), 0 unknown.
    Each figure is None when not uploaded.
    """

    null_frac: float | None = None
    avg_width: int | None = None
    n_distinct: float | None = None
    correlation: float | None = None

    def distinct_values(self, rows: int) -> int | None:
        """How many distinct non-NULL values `rows` rows hold, or None when unknown."""
        if self.n_distinct is None or self.n_distinct == 0:
            return None
        if self.n_distinct < 0:
            return max(1, round(-self.n_distinct * rows))
        return max(1, round(self.n_distinct))

    def as_list(self) -> list[float | int | None]:
        return [self.null_frac, self.avg_width, self.n_distinct, self.correlation]
