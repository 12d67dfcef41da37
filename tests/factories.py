"""factory_boy factories for users and dry-run reports; everything else is made through the API."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model

from changeapi.dryrun import contract


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
