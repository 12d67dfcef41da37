"""Scale a Backfill step's sampled batches to production size and recommend a batch size.

One batch does the same work at any table size (a range of `batch_size` keys through the
ordering key's index, and the rows of it the filter matches); what grows is the number of
batches. So the whole backfill is the sampled batches' time scaled by the backfill class's linear
law from the keys sampled to production's rows, with the same deviation, range and jitter as
every other estimate (`estimate.py`, docs/estimates.md), plus the pauses between batches, which
are exact. Which of production's rows the filter matches is not known: they are taken to match at
the shadow's share, spread as on the shadow.

The recommended batch size keeps one batch's lock time at production size under the project's
target by the estimate's upper bound, since the upper bound is the one to plan a lock by.
"""

from __future__ import annotations

import dataclasses
import math
import statistics

from changeapi.dryrun.analysis.estimate import JITTER_MS, UNFITTED_RESIDUAL, growth_at_scale
from changeapi.dryrun.calibration import DEFAULT_NOISE, LINEAR, ClassCalibration
from changeapi.dryrun.contract import BackfillAtScale, BackfillBatch, BackfillTiming
from changeapi.dryrun.profile import ProductionProfile
from changeapi.dryrun.template_facts import TemplateFacts
from changeapi.intake.backfill import MAX_BATCH_SIZE

DEFAULT_TARGET_LOCK_MS = 200
WORK_CLASS = "backfill"


def _round_down(size: float) -> int:
    """Two significant digits, down: a batch size a person writes, never above the bound."""
    whole = max(int(size), 1)
    step = 10 ** max(len(str(whole)) - 2, 0)
    return max(min(whole // step * step, MAX_BATCH_SIZE), 1)


def estimate_backfill(
    timing: BackfillTiming,
    *,
    profile: ProductionProfile | None,
    facts: TemplateFacts,
    target_lock_ms: int = DEFAULT_TARGET_LOCK_MS,
) -> BackfillTiming:
    """`timing` with its recommendation and, given table stats, its estimate at production size."""
    timing = dataclasses.replace(timing, target_lock_ms=target_lock_ms)
    worked = [batch for batch in timing.batches if batch.keys > 0]
    if not worked or timing.rows_matched == 0:
        return dataclasses.replace(
            timing,
            recommendation="the sample set no rows (the filter matched none on the shadow): nothing to recommend",
            estimate_basis="not estimated: the filter matched no rows on the shadow",
        )
    calibration = facts.calibration
    fitted = calibration.fitted(WORK_CLASS) if calibration else None
    jitter = max(calibration.overhead_ms if calibration else 0.0, JITTER_MS)
    noise = max(fitted.noise if fitted else DEFAULT_NOISE, calibration.noise if calibration else DEFAULT_NOISE)
    residual = fitted.residual if fitted else UNFITTED_RESIDUAL
    lock_ms = statistics.median(batch.lock_ms for batch in worked)
    batch_keys = statistics.median(batch.keys for batch in worked)
    fixed = min(calibration.fixed_ms(WORK_CLASS) if calibration else 0.0, lock_ms * 0.9)
    per_key = (lock_ms - fixed) / batch_keys
    width_ratio, at_production, basis = _at_production(timing, worked, profile, facts, fixed, jitter, noise, residual, fitted)

    # One batch: the same keys at any size, so only the bytes per row and the doubt apply.
    one = growth_at_scale(
        law=LINEAR,
        rows_shadow=batch_keys,
        rows_prod=batch_keys,
        width_ratio=width_ratio,
        deviation=0.0,
        residual=0.0,
        noise=noise,
    )
    key_ms = per_key * one.width_scale
    budget = (target_lock_ms - jitter) / one.range_factor - fixed
    recommended = _round_down(budget / key_ms) if budget > 0 and key_ms > 0 else 1
    declared_ms = fixed + key_ms * timing.batch_size
    declared_high = declared_ms * one.range_factor + jitter
    where = "at production size" if at_production is not None else "on the shadow's rows (no production figures)"
    recommendation = (
        f"batches of {recommended:,} rows keep one batch's locks under {target_lock_ms} ms {where} by the upper bound; "
        f"the declared {timing.batch_size:,} rows hold them about {declared_ms:,.0f} ms (up to {declared_high:,.0f} ms)"
    )
    if budget <= 0:
        recommendation = (
            f"even a batch of one row may hold its locks past {target_lock_ms} ms {where} "
            f"(fixed cost {fixed:.1f} ms, jitter {jitter:.0f} ms, range x{one.range_factor:.2f}): use batches of 1 or raise the target"
        )
    if at_production is not None:
        at_production = dataclasses.replace(
            at_production,
            batch_ms=round(declared_ms, 3),
            batch_low_ms=round(max(declared_ms / one.range_factor - jitter, 0.0), 3),
            batch_high_ms=round(declared_high, 3),
        )
    return dataclasses.replace(
        timing,
        recommended_batch_size=recommended,
        recommendation=recommendation,
        at_production=at_production,
        estimate_basis=basis,
    )


def _at_production(
    timing: BackfillTiming,
    worked: list[BackfillBatch],
    profile: ProductionProfile | None,
    facts: TemplateFacts,
    fixed: float,
    jitter: float,
    noise: float,
    residual: float,
    fitted: ClassCalibration | None,
) -> tuple[float, BackfillAtScale | None, str]:
    """(production's bytes per row over the shadow's, the whole backfill at production size, its basis)."""
    if profile is None or not profile.has_sizes:
        return 1.0, None, "not estimated: no table stats uploaded"
    figures = profile.tables.get(timing.table)
    if figures is None:
        return 1.0, None, f"not estimated: no table stats for {timing.table}"
    if timing.rows_total == 0:
        return 1.0, None, f"not estimated: {timing.table} has no rows on the shadow"
    seeded = facts.seeded.get(timing.table, {})
    seed_rows, seed_bytes = seeded.get("rows") or timing.rows_total, seeded.get("total_bytes", 0)
    width_ratio = (
        (figures.total_bytes / max(figures.rows, 1)) / (seed_bytes / seed_rows) if seed_bytes and figures.total_bytes else 1.0
    )
    share = timing.rows_matched / timing.rows_total
    rows = round(figures.rows * share)
    batches = math.ceil(figures.rows / timing.batch_size)
    sampled_keys = sum(batch.keys for batch in worked)
    growth = growth_at_scale(
        law=LINEAR,
        rows_shadow=sampled_keys,
        rows_prod=max(figures.rows, 1),
        width_ratio=width_ratio,
        deviation=fitted.deviation if fitted else 0.0,
        residual=residual,
        noise=noise,
    )
    sampled_ms = sum(batch.duration_ms for batch in worked)
    variable = max(sampled_ms - fixed * len(worked), 0.0)
    work = fixed * batches + variable * growth.factor * growth.width_scale
    pauses = float(timing.pause_ms * max(batches - 1, 0))
    low = max(work / growth.range_factor - jitter, 0.0)
    high = work * growth.range_factor + jitter
    basis = (
        f"{WORK_CLASS}: linear in rows x{growth.rows_scale:.3g} from {len(worked)} sampled batch(es) spanning "
        f"{sampled_keys:,} keys; production's {figures.rows:,} rows taken to match at the shadow's share ({share:.1%})"
        + ("" if fitted else " (uncalibrated: the law alone)")
    )
    return (
        width_ratio,
        BackfillAtScale(
            rows=rows,
            batches=batches,
            batch_ms=0.0,
            batch_low_ms=0.0,
            batch_high_ms=0.0,
            work_ms=round(work, 3),
            pauses_ms=pauses,
            total_ms=round(work + pauses, 3),
            low_ms=round(low + pauses, 3),
            high_ms=round(high + pauses, 3),
            rows_scale=round(growth.rows_scale, 3),
            width_scale=round(growth.width_scale, 3),
            law=growth.law,
            range_factor=round(growth.range_factor, 3),
            basis=basis,
        ),
        basis,
    )
