"""Table stats and production activity: uploading them, and the profile dry-runs are judged against."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import transaction

from changeapi.audit import AuditContext, audit_record
from changeapi.dryrun.profile import ColumnFigures, ProductionProfile, TableFigures, seeded_template_name
from changeapi.models import Baseline, Project, TableActivity, TableStats

DEFAULT_SEED_MAX_ROWS = 100_000


@dataclass(frozen=True)
class ColumnUpload:
    """One column's `pg_stats` figures as uploaded; None for a figure not sent."""

    column: str
    null_frac: float | None = None
    avg_width: int | None = None
    n_distinct: float | None = None
    correlation: float | None = None


@dataclass(frozen=True)
class IndexUpload:
    index: str
    bytes: int


@dataclass(frozen=True)
class TableUpload:
    """One table of an upload: its size, optionally its columns' statistics and index sizes,
    and optionally its traffic."""

    table: str
    rows: int
    total_bytes: int
    queries_per_second: float | None = None
    writes_per_second: float | None = None
    oldest_transaction_seconds: float | None = None
    columns: list[ColumnUpload] = field(default_factory=list)
    indexes: list[IndexUpload] = field(default_factory=list)


@transaction.atomic
def table_stats_upload(*, project: Project, tables: list[TableUpload], replace: bool, context: AuditContext) -> list[TableStats]:
    """Record production sizes (and traffic) per table; with `replace`, forget tables not sent.

    New sizes give the project's next dry-run a freshly seeded template (its name carries a
    digest of the sizes); traffic only changes the lock queue estimate.
    """
    Project.objects.select_for_update().get(pk=project.pk)
    names = [t.table for t in tables]
    before = {s.table_name: [s.row_count, s.total_bytes] for s in project.table_stats.all()}
    if replace:
        project.table_stats.exclude(table_name__in=names).delete()
        project.table_activity.exclude(table_name__in=names).delete()
    for upload in tables:
        TableStats.objects.update_or_create(
            project=project,
            table_name=upload.table,
            defaults={
                "row_count": upload.rows,
                "total_bytes": upload.total_bytes,
                "columns": [asdict(column) for column in upload.columns],
                "indexes": [asdict(index) for index in upload.indexes],
            },
        )
        if upload.queries_per_second is None:
            project.table_activity.filter(table_name=upload.table).delete()
            continue
        TableActivity.objects.update_or_create(
            project=project,
            table_name=upload.table,
            defaults={
                "queries_per_second": upload.queries_per_second,
                "writes_per_second": upload.writes_per_second,
                "oldest_transaction_seconds": upload.oldest_transaction_seconds,
            },
        )
    stats = list(project.table_stats.order_by("table_name"))
    audit_record(
        context=context,
        action="table_stats.uploaded",
        target=project,
        project=project,
        before={"tables": before},
        after={"tables": {s.table_name: [s.row_count, s.total_bytes] for s in stats}, "replace": replace},
    )
    return stats


def seed_max_rows() -> int:
    return int(getattr(settings, "SCHEMAGATE_SEED_MAX_ROWS", DEFAULT_SEED_MAX_ROWS))


def production_profile(*, project: Project) -> ProductionProfile:
    """The project's uploaded sizes and traffic, as the engine reads them."""
    activity = {a.table_name: a for a in project.table_activity.all()}
    tables = {}
    for stats in project.table_stats.all():
        traffic = activity.get(stats.table_name)
        tables[stats.table_name] = TableFigures(
            rows=stats.row_count,
            total_bytes=stats.total_bytes,
            queries_per_second=traffic.queries_per_second if traffic else None,
            writes_per_second=traffic.writes_per_second if traffic else None,
            oldest_transaction_seconds=traffic.oldest_transaction_seconds if traffic else None,
            columns={
                c["column"]: ColumnFigures(
                    null_frac=c.get("null_frac"),
                    avg_width=c.get("avg_width"),
                    n_distinct=c.get("n_distinct"),
                    correlation=c.get("correlation"),
                )
                for c in stats.columns or []
            },
            index_bytes={i["index"]: i["bytes"] for i in stats.indexes or []},
        )
    return ProductionProfile(tables=tables, seed_max_rows=seed_max_rows())


def seeded_template_for(*, baseline: Baseline, profile: ProductionProfile) -> str:
    """The template a dry-run of this baseline clones: seeded per the profile's sizes."""
    return seeded_template_name(baseline.template_name, profile)
