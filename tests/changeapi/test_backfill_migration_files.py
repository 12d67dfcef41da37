"""A Backfill step in a migration file, named as a release bundle writes it
(`schemagate_backfill.Backfill(...)`): read from its arguments into the service's own step, never
imported, or refused at its line; and through the HTTP intake, checked against the models."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import F, Q, Value

from changeapi.intake.backfill import Backfill
from changeapi.intake.errors import IntakeError
from changeapi.intake.python_source import parse_migration_file
from tests.changeapi.test_backfill_dry_run import STATS

FILE = """from django.db import migrations, models
import schemagate_backfill


class Migration(migrations.Migration):
    dependencies = [("shop", "0001_initial")]

    operations = [
        migrations.AddField("order", "cents", models.BigIntegerField(null=True)),
        {step},{after}
    ]
"""
STEP = 'schemagate_backfill.Backfill(model="shop.Order", assignments={{"cents": models.F("total") * 100}}{extra})'


def source(extra: str = "", *, step: str | None = None, after: str = "") -> str:
    return FILE.format(step=step or STEP.format(extra=extra), after=after)


def read(text: str) -> Any:
    return parse_migration_file(app_label="shop", name="0002_cents", source=text, filename="shop/migrations/0002_cents.py")


def test_a_backfill_named_by_the_bundles_helper_is_read_as_the_services_step():
    extra = ", filter=models.Q(cents__isnull=True), batch_size=500, pause_ms=5, parity=models.Q(cents__isnull=True)"

    step = read(source(extra)).operations[1]

    assert type(step) is Backfill
    assert (step.model, step.batch_size, step.order_by, step.pause_ms) == ("shop.Order", 500, None, 5)
    assert step.assignments == {"cents": F("total") * Value(100)}
    assert step.filter == Q(cents__isnull=True) and step.parity == Q(cents__isnull=True)


def test_a_literal_assignment_is_read_as_a_value():
    step = read(source(step='schemagate_backfill.Backfill("shop.Order", {"cents": 0})')).operations[1]

    assert step.assignments == {"cents": Value(0)}
    assert step.batch_size == 1000


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (", batch_size=0", "batch_size must be a whole number from 1 to 100,000"),
        (", pause_ms=-1", "pause_ms must be a whole number from 0"),
        (", batch_size=True", "batch_size must be a whole number"),
        (', filter={"cents__isnull": True}', "filter must be a models.Q"),
        (", order_by=models.F('id')", "order_by must be a field name"),
        (', modle="shop.Order"', "has no argument 'modle'"),
    ],
)
def test_a_backfill_with_a_wrong_argument_is_refused_at_its_line(extra, message):
    with pytest.raises(IntakeError) as refused:
        read(source(extra))

    assert message in str(refused.value)
    assert refused.value.location.line == 10


@pytest.mark.parametrize(
    ("step", "message"),
    [
        ('schemagate_backfill.Backfill(model="Order", assignments={"cents": 1})', "'app_label.ModelName'"),
        ('schemagate_backfill.Backfill(model="shop.Order", assignments={})', "setting at least one field"),
        ('schemagate_backfill.Backfill(model="shop.Order", assignments={"cents": models.Sum("total")})', "aggregate"),
        ('schemagate_backfill.Backfill(model="shop.Order", assignments={"cents": print})', "print"),
        ('schemagate_backfill.Backfill(assignments={"cents": 1})', "needs model"),
    ],
)
def test_a_backfill_that_is_not_a_declarative_step_is_refused(step, message):
    with pytest.raises(IntakeError) as refused:
        read(source(step=step))

    assert message in str(refused.value)


def test_a_schema_operation_after_a_backfill_in_the_same_migration_is_refused():
    with pytest.raises(IntakeError) as refused:
        read(source(after='\n        migrations.AlterField("order", "cents", models.BigIntegerField()),'))

    assert "follows a Backfill in the same migration" in str(refused.value)


def test_the_services_own_class_is_not_a_name_a_migration_file_may_use():
    step = 'changeapi.intake.backfill.Backfill(model="shop.Order", assignments={"cents": 1})'
    text = source(step=step).replace("import schemagate_backfill", "import changeapi.intake.backfill")

    with pytest.raises(IntakeError) as refused:
        read(text)

    assert "changeapi.intake.backfill" in str(refused.value)


@pytest.mark.django_db(transaction=True)
def test_a_migration_file_backfill_reading_another_table_is_refused_through_the_api(project_with_baseline):
    text = source(step='schemagate_backfill.Backfill(model="shop.Order", assignments={"cents": models.F("customer__email")})')
    files = [{"path": "shop/migrations/0002_cents.py", "content": text}]

    response = project_with_baseline["api"].post(
        "/api/v1/change-requests/", {"project": "shop", "title": "cents", "migration_files": files}, format="json"
    )

    assert response.status_code == 400, response.content
    assert "cannot set cents" in response.json()["detail"]


@pytest.mark.django_db(transaction=True)
def test_a_migration_file_backfill_is_timed_on_the_shadow_like_the_operations_forms(project_with_baseline):
    api = project_with_baseline["api"]
    assert api.post("/api/v1/table-stats/", STATS, format="json").status_code in (200, 201)
    files = [{"path": "shop/migrations/0002_cents.py", "content": source(", batch_size=50")}]

    response = api.post(
        "/api/v1/change-requests/", {"project": "shop", "title": "cents", "migration_files": files}, format="json"
    )

    assert response.status_code == 202, response.content
    dry_run = api.get(f"/api/v1/dry-runs/{response.json()['latest_dry_run']}/").json()
    assert dry_run["status"] == "succeeded", dry_run
    (timing,) = dry_run["report"]["backfills"]
    assert (timing["migration"], timing["model"], timing["batch_size"]) == ("shop.0002_cents", "shop.Order", 50)
    assert timing["batches"] and all(batch["rows"] > 0 for batch in timing["batches"])


def test_the_step_imported_by_name_from_the_helper_is_read_the_same():
    text = source().replace("import schemagate_backfill", "from schemagate_backfill import Backfill")
    text = text.replace("schemagate_backfill.Backfill(", "Backfill(")

    assert type(read(text).operations[1]) is Backfill
