# Release bundles: what they were built on and the dry-run of the whole bundle, the one-time
# applied mark, and (on PostgreSQL) a trigger that keeps a sealed bundle immutable.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

FORWARD = """
CREATE OR REPLACE FUNCTION approvals_releasebundle_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'a release bundle is immutable: DELETE refused'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (NEW.project_id, NEW.number, NEW.archive, NEW.sha256, NEW.manifest, NEW.baseline_id,
        NEW.advanced_baseline_id, NEW.dry_run_report, NEW.created_by_id, NEW.created_at)
       IS DISTINCT FROM
       (OLD.project_id, OLD.number, OLD.archive, OLD.sha256, OLD.manifest, OLD.baseline_id,
        OLD.advanced_baseline_id, OLD.dry_run_report, OLD.created_by_id, OLD.created_at) THEN
        RAISE EXCEPTION 'a release bundle is immutable: only the applied mark may be set'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.applied_at IS NOT NULL
       AND (NEW.applied_at, NEW.applied_by_id) IS DISTINCT FROM (OLD.applied_at, OLD.applied_by_id) THEN
        RAISE EXCEPTION 'a release bundle is marked applied once'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER approvals_releasebundle_immutable
    BEFORE UPDATE OR DELETE ON approvals_releasebundle
    FOR EACH ROW EXECUTE FUNCTION approvals_releasebundle_immutable();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS approvals_releasebundle_immutable ON approvals_releasebundle;
DROP FUNCTION IF EXISTS approvals_releasebundle_immutable();
"""


def forward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(FORWARD, params=None)


def backward(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BACKWARD, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0004_policies'),
        ('changeapi', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='bundleitem',
            name='dry_run',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changeapi.dryrun'),
        ),
        migrations.AddField(
            model_name='releasebundle',
            name='advanced_baseline',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changeapi.baseline'),
        ),
        migrations.AddField(
            model_name='releasebundle',
            name='applied_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='releasebundle',
            name='applied_by',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL),
        ),
        migrations.AddField(
            model_name='releasebundle',
            name='baseline',
            field=models.ForeignKey(blank=True, null=True, on_delete=django.db.models.deletion.PROTECT, related_name='+', to='changeapi.baseline'),
        ),
        migrations.AddField(
            model_name='releasebundle',
            name='dry_run_report',
            field=models.JSONField(blank=True, null=True),
        ),
        migrations.RunPython(forward, backward),
    ]
