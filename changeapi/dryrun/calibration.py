"""Calibrate the time model on the shadow server itself, once per template build.

A scratch table of a typical row shape is filled at two sizes; at each size a rewrite, an
index build, a full-table UPDATE and a validating scan are timed (five runs each, rolled
back). The same work on an empty table gives its fixed cost `c` (new files, catalog updates),
which does not grow. Each class of work follows a growth law in rows (linear, or n log n for
a sort); through the two sizes the law's coefficient is fitted, and what the law does not
explain between them (the residual) and how much repeated runs differ (the noise) are kept
for the estimate's range. Measuring here, rather than assuming, captures this server's disks,
memory and settings; doing it at build time keeps it off every dry-run.

Catalog-only statements do not grow, and one of them takes well under a millisecond: a single
timing of one is mostly the machine's jitter. So typical catalog-only ALTERs are timed many
times here, through the same Django schema editor path a dry-run times a statement through,
and what they cost on this server (median and spread) is kept as their constant.
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from django.db import transaction
from django.db.backends.base.base import BaseDatabaseWrapper

SCRATCH = "_schemagate_calibration"

# What is timed for each class of work; the scratch table has the shape of a typical
# application table (bigint key, a few integers, a short text, a timestamp, a nullable text).
WORKLOADS: dict[str, list[str]] = {
    "rewrite": ["ALTER TABLE {t} ALTER COLUMN amount TYPE bigint"],
    "index_build": ["CREATE INDEX {t}_amount ON {t} (amount)", "CREATE INDEX {t}_label ON {t} (label)"],
    "backfill": ["UPDATE {t} SET note = 'backfilled'"],
    "validation": ["ALTER TABLE {t} ADD CONSTRAINT {t}_amount_check CHECK (amount >= 0)"],
}

LINEAR = "linear"
N_LOG_N = "n_log_n"

# The growth law in rows each class of work follows: scans, validations, rewrites and
# backfills touch every row once; an index build sorts its keys (plus a step when the sort
# spills past maintenance_work_mem, which the estimate adds to its upper bound).
GROWTH_LAW: dict[str, str] = {
    "rewrite": LINEAR,
    "index_build": N_LOG_N,
    "backfill": LINEAR,
    "validation": LINEAR,
}

# Bounds on the deviation from the law the fit may carry into an estimate, as an exponent of
# the rows' growth. Small calibration tables fit the cache and time noisily; a deviation past
# these bounds is noise, not a law. Full-table UPDATEs grow a little faster than linearly
# (dead tuples, WAL, index maintenance), so their bound above is wider.
DEVIATION_BOUNDS: dict[str, tuple[float, float]] = {
    "rewrite": (-0.05, 0.1),
    "index_build": (-0.05, 0.1),
    "backfill": (-0.05, 0.2),
    "validation": (-0.05, 0.1),
}
DEFAULT_NOISE = 0.1  # relative spread of repeated runs assumed when a template holds no measure of its own
RUNS = 5  # the median of five resists a busy neighbour on the server better than one run


# Catalog-only statements of the kinds Django's schema editor emits on an existing table, each
# timed as the first statement of its own transaction (as in a one-operation migration), rolled back.
CATALOG_STATEMENTS = [
    "ALTER TABLE {t} RENAME COLUMN label TO title",
    "ALTER TABLE {t} ALTER COLUMN label TYPE varchar(400)",
    "ALTER TABLE {t} DROP COLUMN note CASCADE",
    "ALTER TABLE {t} ADD COLUMN extra integer NULL",
    "ALTER TABLE {t} ALTER COLUMN amount DROP NOT NULL",
    "ALTER TABLE {t} RENAME TO {t}_renamed",
]
CATALOG_RUNS = 7  # 42 timings: enough for a median and a 10th/90th percentile of the jitter
CATALOG_ROWS = 1_000  # catalog-only work does not depend on rows; a few make it a real table


@dataclass
class CatalogCost:
    """What a catalog-only statement costs on this server, from `runs` timings of several kinds.

    `median_ms` is the constant a catalog-only statement is estimated at; `low_ms`/`high_ms`
    (10th and 90th percentiles) and `max_ms` are the spread the machine's jitter gives one
    timing of such a statement.
    """

    median_ms: float
    low_ms: float
    high_ms: float
    max_ms: float
    runs: int


def catalog_cost(timings: list[float]) -> CatalogCost:
    """The median, 10th/90th percentiles and maximum of catalog-only timings (ms)."""
    ordered = sorted(timings)
    deciles = statistics.quantiles(ordered, n=10, method="inclusive") if len(ordered) > 1 else [ordered[0]] * 9
    return CatalogCost(
        median_ms=round(statistics.median(ordered), 4),
        low_ms=round(deciles[0], 4),
        high_ms=round(deciles[-1], 4),
        max_ms=round(ordered[-1], 4),
        runs=len(ordered),
    )


def law_units(law: str, rows: float) -> float:
    """The amount of work `rows` rows make under `law`: rows, or rows * log2(rows)."""
    rows = max(rows, 1.0)
    return rows * math.log2(rows + 1.0) if law == N_LOG_N else rows


def law_exponent(law: str, small_rows: float, large_rows: float) -> float:
    """The law's growth between two sizes as an exponent of the rows (1 for linear)."""
    if large_rows <= small_rows or small_rows <= 0:
        return 1.0
    ratio = law_units(law, large_rows) / law_units(law, small_rows)
    return math.log(ratio) / math.log(large_rows / small_rows)


_CREATE = """
CREATE TABLE {t} (
    id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
    amount integer NOT NULL,
    owner_id bigint NOT NULL,
    label varchar(200) NOT NULL,
    created timestamptz NOT NULL,
    note text
)
"""

_FILL = """
INSERT INTO {t} (amount, owner_id, label, created, note)
SELECT (g * 7919) %% 1000000, 1 + g %% 5000, 'v' || g || '-' || md5(g::text),
       TIMESTAMPTZ '2015-01-01' + g * INTERVAL '17 seconds',
       CASE WHEN g %% 10 = 0 THEN NULL ELSE md5(g::text) END
FROM generate_series(1::bigint, %s) AS g
"""


@dataclass
class ClassCalibration:
    """One class of work at the two sizes, and its law fitted through them.

    `exponent` is the growth in rows the estimate applies between the sizes (the law's and the
    deviation); `residual` is the part of the fitted growth the law does not explain, and
    `deviation` that part weighed against the noise and bounded; `coefficient_ms` is
    the time per unit of the law (a row, or a row * log2 rows) at the larger size. `noise` is
    the relative spread of the repeated runs (half of max - min over the median).
    """

    exponent: float
    small_ms: float
    large_ms: float
    fixed_ms: float = 0.0
    note: str = ""
    law: str = LINEAR
    coefficient_ms: float = 0.0
    deviation: float = 0.0
    residual: float = 0.0
    noise: float = DEFAULT_NOISE


@dataclass
class Calibration:
    """The time model's parameters for one template on one server."""

    small_rows: int
    small_bytes: int
    large_rows: int
    large_bytes: int
    classes: dict[str, ClassCalibration] = field(default_factory=dict)
    maintenance_work_mem_bytes: int = 64 * 1024 * 1024
    overhead_ms: float = 0.0  # a catalog-only ALTER TABLE: the part of any statement that does not grow
    seconds: float = 0.0
    noise: float = DEFAULT_NOISE  # the server's: the median spread of every repeated timing
    catalog: CatalogCost | None = None  # a catalog-only statement's cost here; None on templates built before it was kept

    def fixed_ms(self, work_class: str) -> float:
        found = self.classes.get(work_class)
        return found.fixed_ms if found else self.overhead_ms

    def fitted(self, work_class: str) -> ClassCalibration | None:
        return self.classes.get(work_class)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Calibration:
        # A template calibrated before laws were stored gets its class's law, no deviation and the default noise.
        classes = {
            name: ClassCalibration(**{"law": GROWTH_LAW.get(name, LINEAR), **values})
            for name, values in data.get("classes", {}).items()
        }
        catalog = data.get("catalog")
        return cls(**{**data, "classes": classes, "catalog": CatalogCost(**catalog) if catalog else None})


def calibration_sizes(seed_max_rows: int) -> tuple[int, int]:
    """Two sizes, a factor 8 apart, large enough to time and no larger than the seed cap needs."""
    large = min(max(seed_max_rows, 40_000), 200_000)
    return large // 8, large


def class_fit(
    work_class: str,
    fixed_ms: float,
    small: tuple[float, float],
    large: tuple[float, float],
    small_rows: int,
    large_rows: int,
) -> ClassCalibration:
    """The law of `work_class` fitted through (median ms, noise) at two sizes."""
    (small_ms, small_noise), (large_ms, large_noise) = small, large
    law = GROWTH_LAW[work_class]
    noise = round(max(small_noise, large_noise), 4)
    fixed = min(fixed_ms, small_ms * 0.9)
    grown_small, grown_large = small_ms - fixed, large_ms - fixed
    expected = law_exponent(law, small_rows, large_rows)
    if grown_small <= 0.5 or grown_large <= grown_small or large_rows <= small_rows:
        coefficient = max(grown_large, 0.0) / law_units(law, large_rows)
        return ClassCalibration(
            exponent=round(expected, 3),
            small_ms=small_ms,
            large_ms=large_ms,
            fixed_ms=round(fixed, 3),
            note="too fast to fit; the law alone",
            law=law,
            coefficient_ms=coefficient,
            noise=noise,
        )
    raw = math.log(grown_large / grown_small) / math.log(large_rows / small_rows)
    residual = raw - expected
    # The residual's standard error if both timings erred by the noise: a deviation no larger
    # than the noise could make is mostly noise, so it is weighed down towards the law.
    error = math.sqrt(2) * noise / math.log(large_rows / small_rows)
    weight = residual**2 / (residual**2 + error**2) if residual else 1.0
    low, high = DEVIATION_BOUNDS[work_class]
    deviation = min(max(residual * weight, low), high)
    notes = []
    if weight < 0.99:
        notes.append(f"deviation {residual:+.2f} from the law weighed against noise (±{error:.2f})")
    if deviation != residual * weight:
        notes.append("bounded")
    note = "; ".join(notes)
    return ClassCalibration(
        exponent=round(expected + deviation, 3),
        small_ms=small_ms,
        large_ms=large_ms,
        fixed_ms=round(fixed, 3),
        note=note,
        law=law,
        coefficient_ms=grown_large / law_units(law, large_rows),
        deviation=round(deviation, 4),
        residual=round(residual, 4),
        noise=noise,
    )


def _time_rolled_back(conn: psycopg.Connection, statements: list[str], table: str) -> tuple[float, float]:
    """Median wall time (ms) of `RUNS` runs of `statements`, each in a rolled-back transaction,
    and their spread: half of max - min over the median."""
    runs = []
    for _ in range(RUNS):
        conn.execute("BEGIN")
        started = time.perf_counter()
        for statement in statements:
            conn.execute(statement.format(t=table))  # type: ignore[arg-type]  # our own constant SQL
        runs.append((time.perf_counter() - started) * 1000)
        conn.execute("ROLLBACK")
    median = statistics.median(runs)
    spread = (max(runs) - min(runs)) / 2 / median if median > 0 else 0.0
    return round(median, 3), round(spread, 4)


def _build_scratch(conn: psycopg.Connection, table: str, rows: int) -> int:
    conn.execute(_CREATE.format(t=table))  # type: ignore[arg-type]
    conn.execute(_FILL.format(t=table), [rows])  # type: ignore[arg-type]
    conn.execute(f"VACUUM (FREEZE, ANALYZE) {table}")  # type: ignore[arg-type]
    row = conn.execute("SELECT pg_total_relation_size(%s::regclass)", [table]).fetchone()
    return int(row[0]) if row else 0


def calibrate(conn: psycopg.Connection, *, seed_max_rows: int) -> Calibration:
    """Time each class of work at two sizes on `conn` (autocommit, owner of the database).

    The scratch tables are dropped afterwards, so the template holds only the baseline.
    """
    started = time.perf_counter()
    small_rows, large_rows = calibration_sizes(seed_max_rows)
    empty_table, small_table, large_table = f"{SCRATCH}_e", f"{SCRATCH}_s", f"{SCRATCH}_l"
    try:
        _build_scratch(conn, empty_table, 0)
        small_bytes = _build_scratch(conn, small_table, small_rows)
        large_bytes = _build_scratch(conn, large_table, large_rows)
        classes = {}
        spreads = []
        for name, statements in WORKLOADS.items():
            fixed_ms, _ = _time_rolled_back(conn, statements, empty_table)
            small = _time_rolled_back(conn, statements, small_table)
            large = _time_rolled_back(conn, statements, large_table)
            spreads += [small[1], large[1]]
            classes[name] = class_fit(name, fixed_ms, small, large, small_rows, large_rows)
        overhead_ms, _ = _time_rolled_back(conn, ["ALTER TABLE {t} ALTER COLUMN note SET STATISTICS 200"], small_table)
        row = conn.execute("SELECT setting::bigint * 1024 FROM pg_settings WHERE name = 'maintenance_work_mem'").fetchone()
    finally:
        conn.execute(f"DROP TABLE IF EXISTS {empty_table}, {small_table}, {large_table}")  # type: ignore[arg-type]
    return Calibration(
        small_rows=small_rows,
        small_bytes=small_bytes,
        large_rows=large_rows,
        large_bytes=large_bytes,
        classes=classes,
        maintenance_work_mem_bytes=int(row[0]) if row else 64 * 1024 * 1024,
        overhead_ms=overhead_ms,
        seconds=round(time.perf_counter() - started, 3),
        noise=round(statistics.median(spreads), 4),
    )


def calibrate_catalog(connection: BaseDatabaseWrapper) -> CatalogCost:
    """Time typical catalog-only statements on `connection` (a Django wrapper on the template,
    autocommit), as a dry-run times a statement: through the schema editor's `execute`, with
    the server's debug1 notices handled, each the first statement of its transaction.

    The scratch table is dropped afterwards.
    """
    table = f"{SCRATCH}_c"
    raw = connection.connection
    notices: list[str] = []

    def notice(diag: Any) -> None:
        notices.append(diag.message_primary or "")

    timings: list[float] = []
    with connection.cursor() as cursor:
        cursor.execute(_CREATE.format(t=table))
        cursor.execute(_FILL.format(t=table), [CATALOG_ROWS])
        cursor.execute(f"CREATE INDEX {table}_label ON {table} (label)")
        cursor.execute(f"ANALYZE {table}")
        cursor.execute("SET client_min_messages = debug1")
    raw.add_notice_handler(notice)
    try:
        for _ in range(CATALOG_RUNS):
            for statement in CATALOG_STATEMENTS:
                with transaction.atomic(using=connection.alias), connection.schema_editor(atomic=False) as editor:
                    started = time.perf_counter()
                    editor.execute(statement.format(t=table))
                    timings.append((time.perf_counter() - started) * 1000)
                    notices.clear()
                    transaction.set_rollback(True, using=connection.alias)
    finally:
        raw.remove_notice_handler(notice)
        with connection.cursor() as cursor:
            cursor.execute("RESET client_min_messages")
            cursor.execute(f"DROP TABLE IF EXISTS {table}")
    return catalog_cost(timings)
