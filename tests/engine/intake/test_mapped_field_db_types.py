"""A custom field whose `db_type()` differs by vendor makes, through its field map entry's
`db_types`, the column its class makes on each engine, and Django's base type elsewhere."""

from __future__ import annotations

import pytest
from django.db import connection

from changeapi.intake.python_source.config import FieldMapping, SourceSettings
from changeapi.intake.python_source.migration_files import parse_migration_file
from tests.support.mariadb import mariadb_connection

pytestmark = pytest.mark.django_db

SOURCE = """\
from django.db import migrations, models
from shop.fields import UnsignedIdField


class Migration(migrations.Migration):
    operations = [
        migrations.AddField('order', 'remote_id', UnsignedIdField(null=True)),
    ]
"""

FIELD_MAP = {
    "shop.fields.UnsignedIdField": {"base": "django.db.models.BigIntegerField", "db_types": {"mysql": "bigint unsigned"}}
}


def remote_id_field():
    planned = parse_migration_file(
        app_label="shop",
        name="0002_remote_id",
        source=SOURCE,
        filename="f.py",
        settings=SourceSettings.build(field_map=FIELD_MAP),
    )
    return planned.operations[0].field


def test_a_mapped_field_makes_its_own_column_type_on_the_vendor_its_map_names():
    with mariadb_connection("mysql") as mariadb:
        assert remote_id_field().db_type(mariadb) == "bigint unsigned"


def test_a_mapped_field_makes_the_base_column_type_on_other_vendors():
    assert remote_id_field().db_type(connection) == "bigint"


def test_a_column_type_for_a_vendor_django_does_not_have_is_refused():
    with pytest.raises(ValueError, match="db_types"):
        FieldMapping.from_setting({"base": "django.db.models.BigIntegerField", "db_types": {"oracle": "NUMBER(19)"}})
