"""The audit trail's model moves to `changeapi` (which both apps use); its table stays as it is."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("approvals", "0005_bundle_apply")]

    operations = [
        migrations.SeparateDatabaseAndState(state_operations=[migrations.DeleteModel(name="AuditEvent")]),
    ]
