"""A bundle's backfills as they run, as Markdown: the summary of its "Schemagate rollout" check run,
and `GET /bundles/{id}/rollout.md` for anywhere else a person reads it.

Each backfill's reported progress is set beside what the dry-run said of it (the whole backfill at
production size), and the contract phase is named ready only as the API names it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.utils import timezone

from approvals.models import ReleaseBundle
from approvals.rollout import BackfillRollout, BackfillState, bundle_backfill_rollout, bundle_backfill_timings
from changeapi.dryrun.contract import BackfillTiming

STATE_MARK = {
    BackfillState.PENDING: "⏳ pending",
    BackfillState.RUNNING: "🔄 running",
    BackfillState.FAILING: "❌ failing",
    BackfillState.STALLED: "⚠️ stalled",
    BackfillState.FINISHED: "✅ finished",
}


@dataclass(frozen=True)
class RolloutSummary:
    """The bundle's rollout in one line and one outcome: `conclusion` is "success" once every
    contract phase is ready, "failure" while a backfill is failing or stalled, else None (still
    under way, or not started)."""

    title: str
    conclusion: str | None
    markdown: str


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    if seconds < 120:
        return f"{seconds:,.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:,.0f} min"
    return f"{seconds / 3600:,.1f} h"


def _estimate(timing: BackfillTiming | None) -> str:
    if timing is None:
        return "–"
    scale = timing.at_production
    if scale is None:
        return f"{_duration(timing.shadow_total_ms / 1000)} on the shadow's {timing.rows_total:,} rows"
    return (
        f"{_duration(scale.total_ms / 1000)} ({_duration(scale.low_ms / 1000)}–{_duration(scale.high_ms / 1000)}), "
        f"{scale.rows:,} rows in {scale.batches:,} batches"
    )


def _row(item: BackfillRollout, timing: BackfillTiming | None) -> str:
    progress = item.progress
    if progress is None:
        done = rate = eta = parity = "–"
    else:
        done = f"{progress.rows:,} rows, {progress.batches:,} batches" + (
            f", {progress.errors:,} errors" if progress.errors else ""
        )
        rate = f"{progress.rate_rows_per_s:,.0f} rows/s"
        eta = "done" if progress.finished else _duration(progress.eta_s)
        parity = "–" if progress.parity_remaining is None else f"{progress.parity_remaining:,}"
    contract = "ready" if item.contract_ready else "waits"
    return (
        f"| {item.phase} | `{item.migration}` | `{item.command}` | {STATE_MARK[BackfillState(item.state)]} | {done} | {rate} "
        f"| {eta} | {_estimate(timing)} | {parity} | {contract} |"
    )


def bundle_rollout_summary(*, bundle: ReleaseBundle, public_url: str, now: dt.datetime | None = None) -> RolloutSummary:
    """Where each of the bundle's backfills stands, beside the dry-run's estimate of it."""
    now = now or timezone.now()
    rollout = bundle_backfill_rollout(bundle=bundle, now=now)
    timings = bundle_backfill_timings(bundle=bundle)
    heading = f"### Schemagate rollout: bundle {bundle.number} of {bundle.project.slug}"
    if not rollout:
        return RolloutSummary(
            title=f"Bundle {bundle.number} has no backfill",
            conclusion="success",
            markdown=f"{heading}\n\nThe bundle has no Backfill step: its migrations apply as its PHASES.md says.\n",
        )
    states = [BackfillState(item.state) for item in rollout]
    ready = sum(item.contract_ready for item in rollout)
    troubled = [item for item in rollout if item.state in (BackfillState.FAILING, BackfillState.STALLED)]
    if ready == len(rollout):
        title, conclusion = f"Bundle {bundle.number}: every backfill reached parity; the contract phase may go ahead", "success"
    elif troubled:
        names = ", ".join(f"{item.phase} ({item.state})" for item in troubled)
        title, conclusion = f"Bundle {bundle.number}: backfill {names}", "failure"
    else:
        title = f"Bundle {bundle.number}: {states.count(BackfillState.FINISHED)} of {len(rollout)} backfills finished"
        title += f", {ready} at parity"
        conclusion = None
    lines = [
        heading,
        "",
        "| Phase | Migration | Command / task | State | Done | Rate | ETA | Dry-run estimate | Parity left | Contract |",
        "|---|---|---|---|---|---|---|---|---|---|",
        *(_row(item, timings.get(item.phase)) for item in rollout),
        "",
        "The contract migrations after a backfill wait until it finished and its parity check counts zero; the "
        "bundle's own preflight (`migrate`, and the head of their SQL files) refuses them before.",
        "",
        f"Progress: `GET {public_url.rstrip('/')}/api/v1/bundles/{bundle.pk}/`.",
    ]
    return RolloutSummary(title=title, conclusion=conclusion, markdown="\n".join(lines) + "\n")
