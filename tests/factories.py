"""factory_boy factories for users, dry-run reports and sealed bundles (for what is read of a bundle
after sealing); everything else is made through the API."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from approvals.models import ReleaseBundle
from changeapi.audit import AuditContext
from changeapi.dryrun import contract
from changeapi.services.projects import project_create


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class LockFactory(factory.Factory):
    class Meta:
        model = contract.Lock

    relation = "shop_order"
    relation_kind = "table"
    table = factory.LazyAttribute(lambda lock: lock.relation)
    mode = "AccessExclusiveLock"
    blocks_reads = True
    blocks_writes = True
    blocks_ddl = True


class StatementTraceFactory(factory.Factory):
    class Meta:
        model = contract.StatementTrace

    index = factory.Sequence(int)
    migration = "shop.0002_change"
    operation_index = 0
    sql = "ALTER TABLE shop_order ADD COLUMN note text NULL"
    transactional = True
    transaction = 1
    started_ms = 0.0
    duration_ms = 1.0
    notices = ()
    locks = ()


class FindingFactory(factory.Factory):
    class Meta:
        model = contract.Finding

    code = "SG102"
    rule = "table-rewrite"
    title = "Table rewritten under ACCESS EXCLUSIVE"
    severity = "high"
    message = "shop_order is rewritten"
    statement_index = 0
    safer_alternative = factory.LazyFunction(lambda: contract.SaferAlternative(summary="Add a new column", steps=()))
    docs = factory.LazyAttribute(lambda f: f"docs/findings.md#{f.code.lower()}-{f.rule}")


class SummaryFactory(factory.Factory):
    class Meta:
        model = contract.Summary

    migrations = 1
    operations = 1
    statements = 1
    rewrites = ()
    tables_scanned = ()
    data_steps_not_executed = 0


class ReportFactory(factory.Factory):
    """A report as the engine writes one, with no statements unless given some."""

    class Meta:
        model = contract.Report

    engine = "postgresql"
    server = "default"
    server_version = "17.0"
    shadow_database = "sg_dr_1"
    clone_ms = 10.0
    started_at = "2025-01-01T00:00:00+00:00"
    finished_at = "2025-01-01T00:00:01+00:00"
    status = "succeeded"
    error = None
    total_ms = 5.0
    summary = factory.SubFactory(SummaryFactory)
    migrations = ()
    statements = ()
    lock_spans = ()
    tables = ()


def backfill_step(n: int) -> dict[str, object]:
    """A Backfill step as a sealed bundle's manifest lists it."""
    return {
        "migration": f"shop.000{n + 1}_order_cents_backfill_order",
        "operation_index": 1,
        "model": "shop.Order",
        "description": "Backfill shop.Order: set cents in batches of 500 by id",
        "helper": "schemagate_backfill.py",
        "command": f"schemagate_backfill_1_{n}",
        "command_file": f"management/commands/schemagate_backfill_1_{n}.py",
        "change_request": 1,
    }


class ProjectFactory(factory.django.DjangoModelFactory):
    """A project made by its service, so its owner holds every permission on it."""

    class Meta:
        model = "changeapi.Project"

    slug = factory.Sequence(lambda n: f"project{n}")
    name = factory.LazyAttribute(lambda p: p.slug.title())
    owner = factory.SubFactory(UserFactory)

    @classmethod
    def _create(cls, model_class, *args, owner, slug, name, **kwargs):  # noqa: ANN001, ANN206
        context = AuditContext(user=owner, via="session", source_ip="127.0.0.1")
        return project_create(creator=owner, slug=slug, name=name, context=context)


class ReleaseBundleFactory(factory.django.DjangoModelFactory):
    """A sealed bundle row, without an archive: its manifest lists `backfills` Backfill steps."""

    class Meta:
        model = ReleaseBundle

    class Params:
        backfills = 1

    project = factory.SubFactory(ProjectFactory)
    number = factory.Sequence(lambda n: n + 1)
    archive = b""
    sha256 = "0" * 64
    manifest = factory.LazyAttribute(lambda b: {"backfills": [backfill_step(n) for n in range(1, b.backfills + 1)]})
    created_by = factory.SubFactory(UserFactory)
