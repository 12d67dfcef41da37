"""RunSQL is read by PostgreSQL's parser before it runs: what it may not do is refused with the reason."""

from __future__ import annotations

import pytest

from changeapi.intake.errors import IntakeError
from changeapi.intake.python_source.migration_files import parse_migration_file
from changeapi.intake.sql_policy import RefusedSql, check_sql


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("COMMIT; BEGIN; ALTER TABLE t ALTER COLUMN c TYPE bigint; COMMIT; BEGIN", "transaction control"),
        ("SAVEPOINT s", "transaction control"),
        ("SET statement_timeout = 0", "limits"),
        ("SET LOCAL lock_timeout = 0", "limits"),
        ("RESET ALL", "limits"),
        ("SET ROLE postgres", "limits"),
        ("SET SESSION AUTHORIZATION postgres", "limits"),
        ("SELECT set_config('statement_timeout', '0', false)", "set_config"),
        ("ALTER ROLE CURRENT_USER SET default_transaction_read_only = on", "role DDL"),
        ("CREATE ROLE x", "role DDL"),
        ("GRANT pg_read_all_stats TO CURRENT_USER", "granting roles"),
        ("ALTER DATABASE postgres CONNECTION LIMIT 0", "database DDL"),
        ("COMMENT ON DATABASE postgres IS 'x'; DROP DATABASE postgres", "database DDL"),
        ("ALTER SYSTEM SET fsync = off", "ALTER SYSTEM"),
        ("COPY (SELECT 1) TO PROGRAM 'id'", "COPY"),
        ("COPY t FROM '/etc/passwd'", "COPY"),
        ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "pg_terminate_backend"),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
        ("ALTER TABLE t OWNER TO postgres", "owner"),
        ("LOAD 'auto_explain'", "LOAD"),
        ("SELEC 1", "cannot be parsed"),
    ],
)
def test_sql_that_would_escape_the_dry_run_is_refused_with_the_reason(sql: str, reason: str) -> None:
    with pytest.raises(RefusedSql, match=reason):
        check_sql(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "ALTER TABLE t ADD COLUMN c integer",
        "CREATE INDEX CONCURRENTLY i ON t (c)",
        "UPDATE t SET c = 0 WHERE c IS NULL",
        "SET search_path = public",
        "DO $$ BEGIN PERFORM 1; END $$",
        "CREATE EXTENSION IF NOT EXISTS citext",
        "COPY t TO STDOUT",
        ["SELECT 1", ("UPDATE t SET c = %s WHERE d = %(d)s AND e LIKE 'x%%'", {"d": 1})],
    ],
)
def test_ordinary_migration_sql_passes(sql: object) -> None:
    check_sql(sql)


def test_a_refused_run_sql_in_a_migration_file_is_located_at_the_call() -> None:
    source = (
        "from django.db import migrations\n\n\nclass Migration(migrations.Migration):\n"
        "    operations = [\n        migrations.RunSQL('SELECT 1', reverse_sql='SET statement_timeout = 0'),\n    ]\n"
    )
    with pytest.raises(IntakeError, match="RunSQL") as caught:
        parse_migration_file(app_label="shop", name="0002_x", source=source, filename="shop/migrations/0002_x.py")
    assert (caught.value.location.line, caught.value.location.column) == (6, 9)
