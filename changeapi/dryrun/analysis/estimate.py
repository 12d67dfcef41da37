"""Scale each statement's measured time to production size by a stated, calibrated model.

The model: `t_prod = c + (t_seed - c) * (B_prod / B_seed) ** k`, where `B` are the total
bytes (heap, indexes, TOAST) of the tables the statement works on, in production (uploaded
stats) and on the seeded shadow; `c` is the fixed cost of the statement's class of work
(timed on an empty table) and `k` the exponent fitted for the class from timings at two seed
sizes when the template was built, bounded around the class's growth law (see calibration). The range uses `k - 0.1` and `k + 0.1`; an index build whose sort no
longer fits in `maintenance_work_mem` at production size spills to disk, so its upper bound
is raised by half. Catalog-only statements are reported at their measured time.
"""

from __future__ import annotations

from changeapi.dryrun.analysis.classify import CATALOG_ONLY, INDEX_BUILD, SCALING_CLASS, Classification
from changeapi.dryrun.calibration import DEFAULT_EXPONENT, Calibration
from changeapi.dryrun.contract import CalibrationSize, ClassExponent, Estimate, EstimationModel, SeededTable, StatementTrace
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.template_facts import TemplateFacts

EXPONENT_SPREAD = 0.1
SPILL_FACTOR = 1.5

MODEL_DESCRIPTION = (
    "t_prod = c + (t_shadow - c) * (bytes_prod / bytes_shadow) ** k per statement, with bytes the total size of the "
    "tables it works on, c the fixed cost of its class of work (timed on an empty table), and k fitted per class of "
    "work from timings at two seed sizes on this server, bounded around its growth law (scans and rewrites "
    "linear, index builds n log n, UPDATEs slightly superlinear); range from k-0.1 to k+0.1 (index builds whose sort exceeds "
    "maintenance_work_mem: upper bound x1.5). Catalog-only statements are not scaled."
)


def model_summary(facts: TemplateFacts, *, estimated: bool) -> EstimationModel:
    """The model as the report states it: formula, calibration sizes and fitted exponents."""
    calibration = facts.calibration
    return EstimationModel(
        description=MODEL_DESCRIPTION,
        calibrated=calibration is not None,
        calibration_sizes=(
            (
                CalibrationSize(rows=calibration.small_rows, bytes=calibration.small_bytes),
                CalibrationSize(rows=calibration.large_rows, bytes=calibration.large_bytes),
            )
            if calibration
            else ()
        ),
        exponents=tuple(
            ClassExponent(
                work_class=name,
                exponent=float(c.exponent),
                small_ms=float(c.small_ms),
                large_ms=float(c.large_ms),
                fixed_ms=float(c.fixed_ms),
                note=c.note,
            )
            for name, c in sorted((calibration.classes if calibration else {}).items())
        ),
        overhead_ms=float(calibration.overhead_ms) if calibration else 0.0,
        maintenance_work_mem_bytes=calibration.maintenance_work_mem_bytes if calibration else None,
        seeded_tables=tuple(
            SeededTable(
                table=name,
                rows=sizes.get("rows", 0),
                bytes=sizes.get("total_bytes", 0),
                columns_from_stats=tuple(facts.seed_columns.get(name, {}).get("stats", ())),
                columns_by_default=tuple(facts.seed_columns.get(name, {}).get("defaults", ())),
            )
            for name, sizes in sorted(facts.seeded.items())
        ),
        seed_warnings=tuple(facts.seed_warnings),
        estimated=estimated,
    )


def _not_scaled(measured: float, basis: str, work_class: str) -> Estimate:
    return Estimate(
        work_class=work_class,
        measured_ms=measured,
        estimated_ms=measured if work_class == CATALOG_ONLY else None,
        low_ms=measured if work_class == CATALOG_ONLY else None,
        high_ms=measured if work_class == CATALOG_ONLY else None,
        scale=None,
        exponent=None,
        basis=basis,
    )


def estimate_statement(
    statement: StatementTrace,
    classification: Classification,
    *,
    profile: ProductionProfile | None,
    facts: TemplateFacts,
) -> Estimate:
    """Measured and estimated time of one statement, with the basis of the estimate."""
    measured = float(statement.duration_ms or 0.0)
    work_class = classification.work_class
    if work_class == CATALOG_ONLY:
        return _not_scaled(measured, "catalog only: does not grow with table size", work_class)
    tables = classification.tables
    if profile is None or not profile.has_sizes:
        return _not_scaled(measured, "not estimated: no table stats uploaded", work_class)
    missing = [t for t in tables if t not in profile.tables]
    unseeded = [t for t in tables if t in profile.tables and not facts.seeded.get(t, {}).get("total_bytes")]
    if missing or unseeded:
        reason = f"no table stats for {', '.join(missing)}" if missing else f"{', '.join(unseeded)} could not be seeded"
        return _not_scaled(measured, f"not estimated: {reason}", work_class)
    prod_bytes = sum(profile.tables[t].total_bytes for t in tables)
    seed_bytes = sum(facts.seeded[t]["total_bytes"] for t in tables)
    scale = prod_bytes / seed_bytes if seed_bytes else 1.0
    calibration: Calibration | None = facts.calibration
    scaling_class = SCALING_CLASS[work_class]
    exponent = calibration.exponent(scaling_class) if calibration else DEFAULT_EXPONENT
    overhead = min(calibration.fixed_ms(scaling_class) if calibration else 0.0, measured * 0.9)
    variable = measured - overhead

    def at(k: float) -> float:
        return round(overhead + variable * scale**k, 3)

    low, mid, high = at(exponent - EXPONENT_SPREAD), at(exponent), at(exponent + EXPONENT_SPREAD)
    basis = f"{scaling_class} model, k={exponent:g}" + ("" if calibration else " (uncalibrated default)")
    if work_class.endswith(INDEX_BUILD) and calibration and prod_bytes > calibration.maintenance_work_mem_bytes >= seed_bytes:
        high = round(high * SPILL_FACTOR, 3)
        basis += "; sort exceeds maintenance_work_mem at production size (upper bound raised)"
    return Estimate(
        work_class=work_class,
        measured_ms=measured,
        estimated_ms=float(mid),
        low_ms=float(min(low, mid)),
        high_ms=float(max(high, mid)),
        scale=float(round(scale, 3)),
        exponent=float(exponent),
        basis=basis,
    )
