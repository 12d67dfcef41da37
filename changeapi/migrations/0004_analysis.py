# Production activity per table, for the lock queue estimate of dry-run reports.

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('changeapi', '0003_intake_settings'),
    ]

    operations = [
        migrations.CreateModel(
            name='TableActivity',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('table_name', models.CharField(max_length=200)),
                ('queries_per_second', models.FloatField(help_text='All queries touching the table, per second.')),
                ('writes_per_second', models.FloatField(blank=True, help_text='INSERT/UPDATE/DELETE per second, if known.', null=True)),
                ('oldest_transaction_seconds', models.FloatField(blank=True, help_text='Age of the oldest transaction usually open on the table.', null=True)),
                ('uploaded_at', models.DateTimeField(auto_now=True)),
                ('project', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='table_activity', to='changeapi.project')),
            ],
            options={
                'ordering': ['project_id', 'table_name'],
                'constraints': [
                    models.UniqueConstraint(fields=('project', 'table_name'), name='table_activity_unique_table'),
                    models.CheckConstraint(condition=models.Q(('queries_per_second__gte', 0), models.Q(('writes_per_second__isnull', True), ('writes_per_second__gte', 0), _connector='OR'), models.Q(('oldest_transaction_seconds__isnull', True), ('oldest_transaction_seconds__gte', 0), _connector='OR')), name='table_activity_non_negative'),
                ],
            },
        ),
    ]
