"""Spare clones: a dry-run takes one by a rename and a new one is made; the reaper keeps the
spares of current templates only; a busy server hands the job to another one."""

from __future__ import annotations

import datetime as dt
import uuid

import psycopg
import pytest
from django.conf import settings as django_settings
from django.utils import timezone

from changeapi.models import DryRun, Project, ShadowDatabase
from changeapi.services.dry_run_guards import ShadowServerBusy
from changeapi.services.dry_runs import _claim_on_some_server
from changeapi.services.shadows import (
    peak_concurrency,
    shadow_chores_wait,
    shadows_reap,
    spare_demand,
    spare_names_for,
    spares_replenish,
)
from changeapi.shadow import provision
from changeapi.shadow.provision import databases_with_prefix, drop_database
from changeapi.shadow.servers import ShadowServer, configured_servers, pick_server
from tests.conftest import ADD_NOTE_AND_INDEX, clone_databases
from tests.support.second_postgres import SecondPostgres

pytestmark = pytest.mark.django_db(transaction=True)


def _submit(api):  # noqa: ANN001
    response = api.post(
        "/api/v1/change-requests/", {"project": "shop", "title": "t", "operations": ADD_NOTE_AND_INDEX}, format="json"
    )
    assert response.status_code == 202, response.content
    return api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()


def _spare(project_slug: str = "shop") -> str:
    return spare_names_for(Project.objects.get(slug=project_slug).current_baseline.template_name)[0]


def _on_server(prefix: str) -> list[str]:
    return [name for server in configured_servers() for name in databases_with_prefix(server, prefix)]


def test_a_dry_run_takes_the_spare_clone_and_a_new_one_is_made(project_with_baseline):
    shadow_chores_wait()
    spare = _spare()
    first_row = ShadowDatabase.objects.get(name=spare, dropped_at__isnull=True)
    assert first_row.kind == ShadowDatabase.Kind.SPARE
    assert _on_server(spare) == [spare]

    dry_run = _submit(project_with_baseline["api"])
    assert dry_run["status"] == "succeeded", dry_run["error"]
    first_row.refresh_from_db()
    assert first_row.dropped_at is not None, "the spare was renamed to the dry-run's clone"

    shadow_chores_wait()
    assert _on_server(spare) == [spare]
    assert ShadowDatabase.objects.filter(name=spare, dropped_at__isnull=True).exclude(pk=first_row.pk).count() == 1
    assert _on_server(f"{django_settings.SHADOW_DATABASE_PREFIX}rt_") == []
    assert clone_databases() == []


def test_a_dry_run_without_a_spare_clones_the_template_and_reports_the_same(project_with_baseline):
    shadow_chores_wait()
    with_spare = _submit(project_with_baseline["api"])
    shadow_chores_wait()
    spare = _spare()
    for server in configured_servers():
        with server.admin_connect() as conn:
            drop_database(conn, spare)

    without = _submit(project_with_baseline["api"])

    assert without["status"] == with_spare["status"] == "succeeded"
    assert [s["sql"] for s in without["report"]["statements"]] == [s["sql"] for s in with_spare["report"]["statements"]]
    assert without["report"]["reversibility"][0]["backwards_sql"] == with_spare["report"]["reversibility"][0]["backwards_sql"]
    shadow_chores_wait()


def test_the_reaper_keeps_spares_of_current_templates_and_drops_stale_ones(project_with_baseline):
    shadow_chores_wait()
    spare = _spare()

    shadows_reap()
    assert _on_server(spare) == [spare]

    Project.objects.filter(slug="shop").update(current_baseline=None)
    shadows_reap()
    assert _on_server(spare) == []


def test_pick_server_picks_the_server_with_fewer_clones(settings):
    second = SecondPostgres()
    second.start()
    try:
        first = configured_servers()[0]
        settings.SHADOW_SERVERS = [first.url, second.url]
        busy = f"{django_settings.SHADOW_DATABASE_PREFIX}dr_load_{uuid.uuid4().hex[:8]}"
        with first.admin_connect() as conn:
            conn.execute(f'CREATE DATABASE "{busy}"')
        try:
            assert pick_server(engine="postgresql", engine_version=15) == ShadowServer(second.url)
        finally:
            with first.admin_connect() as conn:
                drop_database(conn, busy)
    finally:
        second.destroy()


def _occupy(server: ShadowServer, project_with_baseline) -> None:  # noqa: ANN001
    """A running dry-run under a live lease on `server`, as another worker's would be."""
    shadow_chores_wait()
    running = _submit(project_with_baseline["api"])
    DryRun.objects.filter(pk=running["id"]).update(
        status=DryRun.Status.RUNNING,
        server=server.key,
        lease_owner="elsewhere",
        lease_expires_at=timezone.now() + dt.timedelta(hours=1),
    )


def _queued(project_with_baseline) -> int:  # noqa: ANN001
    dry_run = _submit(project_with_baseline["api"])
    DryRun.objects.filter(pk=dry_run["id"]).update(status=DryRun.Status.QUEUED, server="", lease_owner="")
    return dry_run["id"]


def test_a_busy_server_hands_the_job_to_another_server(project_with_baseline, settings):
    settings.SHADOW_MAX_CONCURRENT_PER_SERVER = 1
    settings.SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT = 10
    first = configured_servers()[0]
    # The same cluster under another name: a second server as far as limits are concerned.
    other = ShadowServer(first.url.replace("127.0.0.1", "localhost"))
    assert other.key != first.key
    settings.SHADOW_SERVERS = [first.url, other.url]
    _occupy(first, project_with_baseline)
    job = _queued(project_with_baseline)

    claimed, server = _claim_on_some_server(job, owner="me", first=first)

    assert claimed is not None and server == other
    assert DryRun.objects.get(pk=job).server == other.key
    DryRun.objects.filter(pk=job).update(status=DryRun.Status.SUCCEEDED, lease_expires_at=None)


def test_when_every_server_is_busy_the_job_waits(project_with_baseline, settings):
    settings.SHADOW_MAX_CONCURRENT_PER_SERVER = 1
    settings.SCHEMAGATE_MAX_CONCURRENT_PER_PROJECT = 10
    first = configured_servers()[0]
    _occupy(first, project_with_baseline)
    job = _queued(project_with_baseline)

    with pytest.raises(ShadowServerBusy):
        _claim_on_some_server(job, owner="me", first=first)
    assert DryRun.objects.get(pk=job).status == DryRun.Status.QUEUED


def test_peak_concurrency_counts_runs_open_at_one_instant_and_not_back_to_back_ones():
    t = timezone.now() - dt.timedelta(minutes=5)
    minute = dt.timedelta(minutes=1)

    assert peak_concurrency([]) == 0
    assert peak_concurrency([(t, t + minute), (t + minute, t + 2 * minute)]) == 1
    assert peak_concurrency([(t, t + 2 * minute), (t + minute, t + 3 * minute), (t + minute, None)]) == 3


def test_spares_follow_how_many_dry_runs_of_the_template_ran_at_once(project_with_baseline, settings):
    settings.SHADOW_SPARE_CLONES, settings.SHADOW_SPARE_CLONES_MAX = 1, 3
    api = project_with_baseline["api"]
    first, second = _submit(api), _submit(api)
    started = timezone.now() - dt.timedelta(minutes=2)
    DryRun.objects.filter(pk__in=[first["id"], second["id"]]).update(
        started_at=started, finished_at=started + dt.timedelta(seconds=30)
    )
    baseline = Project.objects.get(slug="shop").current_baseline
    shadow_chores_wait()

    made = spares_replenish(server=configured_servers()[0], template=baseline.template_name, baseline_id=baseline.pk)

    assert spare_demand(baseline.pk) == 2
    assert made == spare_names_for(baseline.template_name, 2)[1:], "the first spare was there; the second is new"
    assert set(spare_names_for(baseline.template_name, 2)) <= set(_on_server(f"{django_settings.SHADOW_DATABASE_PREFIX}sp_"))


def test_spares_never_exceed_the_configured_ceiling(project_with_baseline, settings):
    settings.SHADOW_SPARE_CLONES, settings.SHADOW_SPARE_CLONES_MAX = 1, 1
    api = project_with_baseline["api"]
    first, second = _submit(api), _submit(api)
    started = timezone.now() - dt.timedelta(minutes=2)
    DryRun.objects.filter(pk__in=[first["id"], second["id"]]).update(started_at=started, finished_at=None)

    assert spare_demand(Project.objects.get(slug="shop").current_baseline_id) == 1


def _owner_of(name: str) -> str | None:
    with configured_servers()[0].admin_connect() as conn:
        row = conn.execute(
            "SELECT r.rolname FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba WHERE d.datname = %s", [name]
        ).fetchone()
    return row[0] if row else None


def _role_exists(role: str) -> bool:
    with configured_servers()[0].admin_connect() as conn:
        return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone() is not None


def test_a_spare_is_handed_to_a_role_of_its_own_that_becomes_the_claiming_jobs(project_with_baseline):
    shadow_chores_wait()
    spare, server = _spare(), configured_servers()[0]
    baseline = Project.objects.get(slug="shop").current_baseline
    provision.clone_drop(server, spare)  # made afresh, whatever an earlier version left
    spares_replenish(server=server, template=baseline.template_name, baseline_id=baseline.pk)
    assert _owner_of(spare) == server.job_role(spare)
    clone = f"{django_settings.SHADOW_DATABASE_PREFIX}dr_claim_probe"

    taken = provision.spare_claim(server, spares=[spare], name=clone)

    try:
        assert taken == spare
        assert _owner_of(clone) == server.job_role(clone)
        assert not _role_exists(server.job_role(spare)), "the spare's role was renamed, not copied"
        with psycopg.connect(**server.runner_conninfo(clone)) as conn:  # type: ignore[arg-type]
            assert conn.execute("SELECT current_user").fetchone() == (server.job_role(clone),)
    finally:
        provision.clone_drop(server, clone)


def test_a_spare_still_being_made_is_not_taken(project_with_baseline):
    shadow_chores_wait()
    spare, server = _spare(), configured_servers()[0]
    clone = f"{django_settings.SHADOW_DATABASE_PREFIX}dr_claim_probe"

    with server.admin_connect() as maker:
        maker.execute("SELECT pg_advisory_lock(%s)", [provision._lock_key(spare)])
        assert provision.spare_claim(server, spares=[spare], name=clone) is None
    try:
        assert provision.spare_claim(server, spares=[spare], name=clone) == spare, "taken once its maker is done"
    finally:
        provision.clone_drop(server, clone)
