"""Scale one statement's time on the clone to production size, for the engines that are not
calibrated at template build (MySQL/MariaDB, SQLite).

Each statement is fitted from its own timing on the clone's `n` rows, less a fixed cost `c`
the engine knows of it (MySQL's one-row copy; 0 on SQLite), with its class's law between the
clone's rows and production's and no deviation from the law:

    t_prod = c + (t_clone - c) * L(n_prod) / L(n_clone) * (1 - b + b * w_prod / w_clone)

The range is PostgreSQL's (`estimate.growth_at_scale`) with the documented defaults in place
of fitted figures.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from changeapi.dryrun.analysis.classify import CATALOG_ONLY, SCALING_CLASS, Classification
from changeapi.dryrun.analysis.estimate import (
    BYTES_SHARE,
    JITTER_MS,
    RANGE_FLOOR,
    UNFITTED_RESIDUAL,
    growth_at_scale,
    scaled_estimate,
    unscaled_estimate,
)
from changeapi.dryrun.calibration import DEFAULT_NOISE, GROWTH_LAW
from changeapi.dryrun.contract import Estimate, EstimationModel, SeededTable, StatementTrace
from changeapi.dryrun.profile import ProductionProfile


def estimate_from_clone(
    measured: float,
    classification: Classification,
    *,
    profile: ProductionProfile | None,
    clone_rows: Mapping[str, int],
    clone_bytes: Mapping[str, int],
    fixed_ms: float = 0.0,
    fixed_source: str = "",
) -> Estimate:
    """`measured` ms on the clone, scaled to the profile's size of the one table the statement
    works on; unscaled (with the reason in the basis) when a figure is missing.

    `fixed_ms` is the part of the time that does not grow (at most 90 % of it), timed on
    `fixed_source`.
    """
    work_class = classification.work_class
    if work_class == CATALOG_ONLY:
        return unscaled_estimate(measured, f"catalog only: {classification.evidence}", work_class, JITTER_MS, DEFAULT_NOISE)
    [table] = classification.tables
    if profile is None or not profile.has_sizes:
        return unscaled_estimate(measured, "not estimated: no table stats uploaded", work_class, JITTER_MS, DEFAULT_NOISE)
    if table not in profile.tables:
        return unscaled_estimate(measured, f"not estimated: no table stats for {table}", work_class, JITTER_MS, DEFAULT_NOISE)
    rows = clone_rows.get(table, 0)
    if rows < 1:
        reason = f"not estimated: {table} has no rows on the clone"
        return unscaled_estimate(measured, reason, work_class, JITTER_MS, DEFAULT_NOISE)
    production = profile.tables[table]
    weight = clone_bytes.get(table, 0)
    width_ratio = (
        (production.total_bytes / max(production.rows, 1)) / (weight / rows) if weight and production.total_bytes else 1.0
    )
    growth = growth_at_scale(
        law=GROWTH_LAW[SCALING_CLASS[work_class]],
        rows_shadow=rows,
        rows_prod=max(production.rows, 1),
        width_ratio=width_ratio,
        deviation=0.0,
        residual=UNFITTED_RESIDUAL,
        noise=DEFAULT_NOISE,
    )
    fixed = min(fixed_ms, measured * 0.9)
    mid = fixed + (measured - fixed) * growth.factor * growth.width_scale
    less = f", less {fixed:.3g} ms on {fixed_source}" if fixed_source else ""
    basis = (
        f"{work_class}: {growth.law} in rows x{growth.rows_scale:.3g} from this statement's own time "
        f"on the clone's {rows:,} rows{less} (not calibrated: the law alone)"
    )
    low = max(mid / growth.range_factor - JITTER_MS, 0.0)
    high = mid * growth.range_factor + JITTER_MS
    scale = production.total_bytes / weight if weight else None
    return scaled_estimate(work_class, measured, growth, mid=mid, low=low, high=high, scale=scale, basis=basis)


def clone_model_summary(
    description: str, *, clone_rows: Mapping[str, int], clone_bytes: Mapping[str, int], estimated: bool
) -> EstimationModel:
    """The model as the report states it (not calibrated), with the clone's rows and bytes it
    scaled from."""
    return EstimationModel(
        description=description,
        calibrated=False,
        calibration_sizes=(),
        exponents=(),
        overhead_ms=0.0,
        maintenance_work_mem_bytes=None,
        seeded_tables=tuple(
            SeededTable(table=name, rows=rows, bytes=clone_bytes.get(name, 0)) for name, rows in sorted(clone_rows.items())
        ),
        seed_warnings=(),
        estimated=estimated,
        noise=DEFAULT_NOISE,
        range_floor=RANGE_FLOOR,
        bytes_share=BYTES_SHARE,
        jitter_ms=JITTER_MS,
    )


def analysed_statement(statement: StatementTrace, classification: Classification, estimate: Estimate) -> StatementTrace:
    """`statement` with its work class, the table it works on, the evidence and its estimate."""
    return dataclasses.replace(
        statement,
        work_class=classification.work_class,
        work_tables=classification.tables,
        evidence=classification.evidence,
        estimate=estimate,
    )
