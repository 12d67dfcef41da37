"""The audit trail's model, moved here from `approvals` on its existing table (state only:
the table, its index and its append-only trigger are untouched)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("changeapi", "0008_authorship_and_identity_confirmation"),
        ("approvals", "0006_audit_trail_moves_to_changeapi"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="AuditEvent",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("via", models.CharField(blank=True, help_text="session, token, integration name, worker", max_length=64)),
                        ("action", models.CharField(max_length=64)),
                        ("target_type", models.CharField(max_length=64)),
                        ("target_id", models.CharField(max_length=64)),
                        ("before", models.JSONField(blank=True, null=True)),
                        ("after", models.JSONField(blank=True, null=True)),
                        ("source_ip", models.GenericIPAddressField(blank=True, null=True)),
                        ("created_at", models.DateTimeField(auto_now_add=True)),
                        (
                            "actor",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to=settings.AUTH_USER_MODEL,
                            ),
                        ),
                        (
                            "project",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.PROTECT,
                                related_name="+",
                                to="changeapi.project",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "approvals_auditevent",
                        "ordering": ["id"],
                        "indexes": [models.Index(fields=["target_type", "target_id"], name="audit_target_idx")],
                    },
                ),
            ]
        ),
    ]
