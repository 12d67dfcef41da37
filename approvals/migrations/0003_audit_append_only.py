"""On PostgreSQL, the audit table refuses UPDATE and DELETE at the database level.

TRUNCATE stays a table-owner operation (test databases are flushed with it); production
deployments run the service as a role without TRUNCATE on this table.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION approvals_auditevent_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'approvals_auditevent is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;
CREATE TRIGGER approvals_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON approvals_auditevent
    FOR EACH ROW EXECUTE FUNCTION approvals_auditevent_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS approvals_auditevent_no_update_delete ON approvals_auditevent;
DROP FUNCTION IF EXISTS approvals_auditevent_append_only();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):
    dependencies = [("approvals", "0002_initial")]
    operations = [migrations.RunPython(forward, backward)]
