"""Reads: what a user may see, and the parsed forms of stored submissions."""

from __future__ import annotations

import functools
from collections.abc import Collection
from typing import cast

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.migrations.state import ProjectState
from django.db.models import QuerySet

from changeapi.dryrun.contract import Report, report_from_json
from changeapi.dryrun.engine import baseline_state as engine_baseline_state
from changeapi.intake.plan import Plan
from changeapi.intake.submission import parse_submission
from changeapi.models import ApiKey, Baseline, ChangeRequest, DryRun, Project, Revision
from changeapi.permissions import VIEW, projects_with_perm


def change_requests_visible_to(
    *, user: AbstractBaseUser | AnonymousUser, project: Project | None = None
) -> QuerySet[ChangeRequest]:
    qs = ChangeRequest.objects.filter(project__in=projects_with_perm(user, VIEW))
    return qs.filter(project=project) if project is not None else qs


@functools.lru_cache(maxsize=32)
def _baseline_plan_cached(baseline_id: int, sha256: str) -> Plan:
    baseline = Baseline.objects.select_related("project").get(pk=baseline_id)
    return parse_submission(
        form=baseline.form,
        source=baseline.source,
        baseline=None,
        base_state=None,
        engine=baseline.project.engine,
        project_settings=baseline.project.intake_settings,
    ).plan


def baseline_plan(baseline: Baseline) -> Plan:
    """The baseline's migrations, parsed once per process (a baseline never changes)."""
    return _baseline_plan_cached(baseline.pk, baseline.sha256)


def baseline_state(baseline: Baseline) -> ProjectState:
    """The baseline's ProjectState, built once per process; callers must clone before changing it.

    The engine's cache, keyed by the cached plan: the submission check and the dry-run of the
    same baseline in one process share one state.
    """
    return engine_baseline_state(baseline_plan(baseline))


def revision_plan(revision: Revision, baseline: Baseline | None = None) -> Plan:
    """A revision's plan on top of `baseline` (default: the one it was submitted on).

    Re-derived rather than stored: a dry-run on a newer baseline numbers the migrations after
    that baseline's, exactly as `makemigrations` would have at that point.
    """
    baseline = baseline or revision.baseline
    return parse_submission(
        form=revision.form,
        source=revision.source,
        baseline=baseline_plan(baseline),
        base_state=baseline_state(baseline),
        engine=revision.change_request.project.engine,
        project_settings=revision.change_request.project.intake_settings,
        validate=False,
    ).plan


def latest_revision(change_request: ChangeRequest) -> Revision:
    revision = change_request.revisions.order_by("-number").first()
    assert revision is not None, "a change request always has a revision"
    return revision


def dry_run_report(*, dry_run: DryRun | None) -> Report | None:
    """The dry-run's report, typed: the one way code outside the engine reads a stored report,
    of whichever version stored it. None until the dry-run has one.

    Decoded once per loaded row: webhooks, integrations and policies read the report of the
    dry-run just finished, and a report of a few hundred statements takes a good part of a
    second to decode."""
    if dry_run is None or dry_run.report is None:
        return None
    cached = dry_run.__dict__.get(_TYPED_REPORT)
    if cached is not None and cached[0] is dry_run.report:
        return cast(Report, cached[1])
    report = report_from_json(dry_run.report)
    dry_run_report_known(dry_run, report)
    return report


_TYPED_REPORT = "_typed_report"


def dry_run_report_known(dry_run: DryRun, report: Report) -> None:
    """Remember `report` as the typed form of the JSON now on `dry_run.report` (for the code
    that wrote it, which has the typed report in hand)."""
    dry_run.__dict__[_TYPED_REPORT] = (dry_run.report, report)


def latest_dry_run(revision: Revision) -> DryRun | None:
    return revision.dry_runs.order_by("-id").first()


def accountable_people(user_ids: Collection[int]) -> set[int]:
    """The people behind accounts: an API key's bot account stands for the person who made the key."""
    owners = ApiKey.objects.filter(user_id__in=list(user_ids)).values_list("created_by_id", flat=True)
    return set(user_ids) | set(owners)
