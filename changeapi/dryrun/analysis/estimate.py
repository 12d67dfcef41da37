"""Scale each statement's measured time to production size by a stated, calibrated model.

Each class of work follows a growth law in rows: rewrites, scans, validations and backfills
are linear, index builds n log n, catalog-only statements constant. The measured time less
the class's fixed cost `c` is scaled by the law from the shadow's rows to production's,
times the deviation from the law the calibration fitted, and by production's bytes per row
against the shadow's for the share of per-row time that follows bytes:

    t_prod = c + (t_shadow - c) * L(n_prod) / L(n_shadow) * (n_prod / n_shadow) ** d
                 * (1 - b + b * w_prod / w_shadow)

with `L(n) = n` or `n log2 n`, `d` the bounded deviation, `w` bytes per row and `b` the bytes
share. Growth follows rows: a seed whose rows are wider than production's moves the estimate
only through the bytes share, never as a whole.

The range multiplies and divides the estimate by one factor made of what is not known: a
floor for what the seed cannot know of production's data (key order, dead tuples, cache),
the server's measured noise, the fit's residual grown over the extrapolation, and the bytes
share's own doubt; plus an absolute jitter of a few milliseconds (at least the catalog-only
overhead). An index build whose
sort spills past `maintenance_work_mem` at production size has its upper bound raised by half.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from changeapi.dryrun.analysis.classify import CATALOG_ONLY, INDEX_BUILD, SCALING_CLASS, Classification
from changeapi.dryrun.calibration import (
    DEFAULT_NOISE,
    GROWTH_LAW,
    N_LOG_N,
    Calibration,
    CatalogCost,
    law_exponent,
    law_units,
)
from changeapi.dryrun.contract import (
    CalibrationSize,
    CatalogOnlyCost,
    ClassExponent,
    Estimate,
    EstimationModel,
    SeededTable,
    StatementTrace,
)
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.template_facts import TemplateFacts

RANGE_FLOOR = 1.5  # no estimate is stated tighter than /1.5 .. x1.5: the seed is not production
BYTES_SHARE = 0.5  # half of the per-row time follows the row's bytes, half the row itself
BYTES_SHARE_DOUBT = 0.25  # the share is assumed, not fitted: anywhere in 0.25 .. 0.75
UNFITTED_RESIDUAL = 0.1  # an uncalibrated class's doubt about its law, per e-fold of rows
LEAST_RESIDUAL = 0.05  # two sizes never prove a law exact
WIDTH_BOUNDS = (0.25, 4.0)
SPILL_FACTOR = 1.5
# Any statement's time jitters by a few milliseconds however small its work (catalog cache,
# WAL flush, a checkpoint or autovacuum next door): no range is narrower than that, absolute.
JITTER_MS = 5.0

FORMULAS = {
    "linear": "t = c + a * rows * (1 - b + b * bytes_per_row / bytes_per_row_seed)",
    N_LOG_N: "t = c + a * rows * log2(rows) * (1 - b + b * bytes_per_row / bytes_per_row_seed)",
}

MODEL_DESCRIPTION = (
    "t_prod = c + (t_shadow - c) * L(rows_prod) / L(rows_shadow) * (rows_prod / rows_shadow) ** d "
    "* (1 - b + b * bytes_per_row_prod / bytes_per_row_shadow), per statement, over the tables it works on: "
    "L(n) = n for rewrites, scans, validations and backfills, n log2 n for index builds; catalog-only statements "
    "are constant: the geometric mean of their timing and the median of catalog-only statements timed on this "
    "server when the template was built (one that creates relations: as timed). c (fixed cost, timed on an empty table), the coefficient and the deviation d from the law are "
    f"fitted per class from timings at two seed sizes on this server; b = {BYTES_SHARE} is the share of per-row time "
    "that follows bytes. Range: the estimate divided and multiplied by one factor combining a floor "
    f"(x{RANGE_FLOOR}, what the seed cannot know), the server's measured noise, the fit's residual over the "
    "extrapolation and the bytes share's doubt, plus a jitter of at least 5 ms; index builds whose sort "
    "exceeds maintenance_work_mem at production size: upper bound x1.5."
)


def model_summary(facts: TemplateFacts, *, estimated: bool) -> EstimationModel:
    """The model as the report states it: formula per class, coefficients, noise and sizes."""
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
                law=c.law,
                formula=FORMULAS.get(c.law, ""),
                coefficient_ms=float(c.coefficient_ms),
                deviation=float(c.deviation),
                residual=float(c.residual),
                noise=float(c.noise),
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
        noise=float(calibration.noise) if calibration else DEFAULT_NOISE,
        range_floor=RANGE_FLOOR,
        bytes_share=BYTES_SHARE,
        jitter_ms=_jitter(calibration),
        catalog_only=(
            CatalogOnlyCost(**dataclasses.asdict(calibration.catalog)) if calibration and calibration.catalog else None
        ),
    )


def _jitter(calibration: Calibration | None) -> float:
    """At least JITTER_MS; more when the calibration saw constant-time statements jitter further
    (the 90th percentile of the catalog-only timings over their median), as on a busy server.
    Not their slowest: one stall in thirty timings is not what every statement suffers."""
    if calibration is None:
        return JITTER_MS
    catalog = calibration.catalog
    spread = catalog.high_ms - catalog.median_ms if catalog else 0.0
    return round(max(calibration.overhead_ms, spread, JITTER_MS), 3)


@dataclass(frozen=True, slots=True)
class Growth:
    """How one statement's variable time grows from the shadow to production, and the doubt."""

    law: str
    rows_scale: float
    width_scale: float
    factor: float  # the law's growth times the deviation, before the width
    exponent: float
    range_factor: float


def _width(ratio: float, share: float) -> float:
    return 1.0 - share + share * ratio


def growth_at_scale(
    *, law: str, rows_shadow: float, rows_prod: float, width_ratio: float, deviation: float, residual: float, noise: float
) -> Growth:
    """The growth from `rows_shadow` to `rows_prod` under `law`, and the range factor around it.

    A pure function of figures, so the law and the range can be checked without a server.
    """
    rows_scale = rows_prod / rows_shadow if rows_shadow > 0 else 1.0
    ratio = min(max(width_ratio, WIDTH_BOUNDS[0]), WIDTH_BOUNDS[1])
    width = _width(ratio, BYTES_SHARE)
    factor = law_units(law, rows_prod) / law_units(law, rows_shadow) * rows_scale**deviation
    exponent = math.log(factor) / math.log(rows_scale) if abs(math.log(rows_scale)) > 1e-9 else law_exponent(law, 1, 2)
    extrapolation = max(abs(residual), LEAST_RESIDUAL) * abs(math.log(rows_scale))
    width_doubt = max(
        abs(math.log(_width(ratio, BYTES_SHARE + BYTES_SHARE_DOUBT) / width)),
        abs(math.log(_width(ratio, BYTES_SHARE - BYTES_SHARE_DOUBT) / width)),
    )
    spread = math.hypot(math.log(RANGE_FLOOR), math.log1p(2 * noise), extrapolation, width_doubt)
    return Growth(law, rows_scale, width, factor, exponent, math.exp(spread))


def unscaled_estimate(measured: float, basis: str, work_class: str, jitter_ms: float, noise: float) -> Estimate:
    """The measured time as the estimate of a catalog-only statement (with the floor and noise
    around it); for any other class no estimate, and `basis` says why not."""
    if work_class != CATALOG_ONLY:
        return Estimate(
            work_class=work_class,
            measured_ms=measured,
            estimated_ms=None,
            low_ms=None,
            high_ms=None,
            scale=None,
            exponent=None,
            basis=basis,
        )
    factor = _constant_factor(noise)
    return _constant(
        measured,
        estimated=measured,
        low=max(measured / factor - jitter_ms, 0.0),
        high=measured * factor + jitter_ms,
        basis=basis,
        factor=factor,
    )


def _constant_factor(noise: float) -> float:
    return math.exp(math.hypot(math.log(RANGE_FLOOR), math.log1p(2 * noise)))


def _constant(measured: float, *, estimated: float, low: float, high: float, basis: str, factor: float) -> Estimate:
    return Estimate(
        work_class=CATALOG_ONLY,
        measured_ms=measured,
        estimated_ms=round(estimated, 3),
        low_ms=round(low, 3),
        high_ms=round(high, 3),
        scale=None,
        exponent=None,
        basis=basis,
        rows_scale=None,
        width_scale=None,
        law="constant",
        range_factor=round(factor, 3),
    )


def catalog_only_estimate(
    measured: float, *, creates_relations: bool, cost: CatalogCost, noise: float, jitter_ms: float
) -> Estimate:
    """A catalog-only statement at production size: what such statements cost on this server.

    A catalog-only change of existing relations (a rename, a dropped or added column, a type
    the server need not check, a dropped default) updates a few catalog rows, well under a
    millisecond on a quiet server; one timing of it is as much the machine's jitter as its
    work (on a busy machine, waiting for a core takes longer than the statement). Two figures
    say what it costs: the median of the catalog-only statements timed on this server when the
    template was built, and this statement's own timing. Each can be off by the jitter, so
    the estimate is their geometric mean, and the range holds both, widened by the floor and
    the larger of the server's noise and the calibration's catalog-only spread, plus the
    jitter above. A statement that creates relations (a table and its indexes) does catalog
    work of its own: it is estimated as timed, and its range reaches down to the typical cost.
    """
    factor = _constant_factor(max(noise, _catalog_noise(cost)))
    low = min(cost.low_ms, measured) / factor
    if not creates_relations:
        return _constant(
            measured,
            estimated=math.sqrt(cost.median_ms * measured) if measured > 0 else cost.median_ms,
            low=low,
            high=max(cost.high_ms, measured) * factor + jitter_ms,
            basis=(
                f"catalog only: constant; the geometric mean of this timing and the median of {cost.runs} "
                "catalog-only statements timed on this server"
            ),
            factor=factor,
        )
    return _constant(
        measured,
        estimated=measured,
        low=low,
        high=measured * factor + jitter_ms,
        basis="catalog only: constant, as timed (it creates relations: catalog work of its own)",
        factor=factor,
    )


def _catalog_noise(cost: CatalogCost) -> float:
    """The spread of catalog-only timings as a relative noise: half the 10th-90th percentile
    range over the median, the same measure as the classes' noise."""
    return (cost.high_ms - cost.low_ms) / 2 / cost.median_ms if cost.median_ms > 0 else 0.0


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
    calibration: Calibration | None = facts.calibration
    jitter = _jitter(calibration)
    noise = calibration.noise if calibration else DEFAULT_NOISE
    if work_class == CATALOG_ONLY:
        if calibration is not None and calibration.catalog is not None:
            return catalog_only_estimate(
                measured,
                creates_relations=bool(statement.created_relations),
                cost=calibration.catalog,
                noise=noise,
                jitter_ms=jitter,
            )
        return unscaled_estimate(measured, "catalog only: does not grow with table size", work_class, jitter, noise)
    tables = classification.tables
    if profile is None or not profile.has_sizes:
        return unscaled_estimate(measured, "not estimated: no table stats uploaded", work_class, jitter, noise)
    missing = [t for t in tables if t not in profile.tables]
    unseeded = [t for t in tables if t in profile.tables and not facts.seeded.get(t, {}).get("rows")]
    if missing or unseeded:
        reason = f"no table stats for {', '.join(missing)}" if missing else f"{', '.join(unseeded)} could not be seeded"
        return unscaled_estimate(measured, f"not estimated: {reason}", work_class, jitter, noise)
    prod_rows = sum(profile.tables[t].rows for t in tables)
    prod_bytes = sum(profile.tables[t].total_bytes for t in tables)
    seed_rows = sum(facts.seeded[t]["rows"] for t in tables)
    seed_bytes = sum(facts.seeded[t].get("total_bytes", 0) for t in tables)
    scaling_class = SCALING_CLASS[work_class]
    fitted = calibration.fitted(scaling_class) if calibration else None
    width_ratio = (prod_bytes / max(prod_rows, 1)) / (seed_bytes / seed_rows) if seed_bytes and prod_bytes else 1.0
    growth = growth_at_scale(
        law=fitted.law if fitted else GROWTH_LAW[scaling_class],
        rows_shadow=seed_rows,
        rows_prod=max(prod_rows, 1),
        width_ratio=width_ratio,
        deviation=fitted.deviation if fitted else 0.0,
        residual=fitted.residual if fitted else UNFITTED_RESIDUAL,
        noise=max(fitted.noise if fitted else DEFAULT_NOISE, noise),
    )
    overhead = min(calibration.fixed_ms(scaling_class) if calibration else 0.0, measured * 0.9)
    mid = overhead + (measured - overhead) * growth.factor * growth.width_scale
    low = max(mid / growth.range_factor - jitter, 0.0)
    high = mid * growth.range_factor + jitter
    basis = f"{scaling_class}: {growth.law} in rows x{growth.rows_scale:.3g}" + (
        "" if calibration else " (uncalibrated: the law alone)"
    )
    if work_class.endswith(INDEX_BUILD) and calibration and prod_bytes > calibration.maintenance_work_mem_bytes >= seed_bytes:
        high *= SPILL_FACTOR
        basis += "; sort exceeds maintenance_work_mem at production size (upper bound raised)"
    scale = prod_bytes / seed_bytes if seed_bytes else None
    return scaled_estimate(work_class, measured, growth, mid=mid, low=low, high=high, scale=scale, basis=basis)


def scaled_estimate(
    work_class: str, measured: float, growth: Growth, *, mid: float, low: float, high: float, scale: float | None, basis: str
) -> Estimate:
    """The estimate of a statement scaled by `growth`, its figures rounded as reports state them."""
    return Estimate(
        work_class=work_class,
        measured_ms=measured,
        estimated_ms=round(mid, 3),
        low_ms=round(low, 3),
        high_ms=round(high, 3),
        scale=round(scale, 3) if scale is not None else None,
        exponent=round(growth.exponent, 3),
        basis=basis,
        rows_scale=round(growth.rows_scale, 3),
        width_scale=round(growth.width_scale, 3),
        law=growth.law,
        range_factor=round(growth.range_factor, 3),
    )
