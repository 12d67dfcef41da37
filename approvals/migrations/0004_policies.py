# Approval policies, risk rules, and reviews bound to the dry-run they were made on.

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('approvals', '0003_audit_append_only'),
        ('auth', '0012_alter_user_first_name_max_length'),
        ('changeapi', '0001_initial'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='review',
            name='dry_run',
            field=models.ForeignKey(blank=True, help_text='The latest dry-run of the revision when the decision was made.', null=True, on_delete=django.db.models.deletion.PROTECT, related_name='reviews', to='changeapi.dryrun'),
        ),
        migrations.AddField(
            model_name='review',
            name='via',
            field=models.CharField(blank=True, help_text='session, token or integration name', max_length=64),
        ),
        migrations.CreateModel(
            name='ApprovalPolicy',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('allow_bot_approvals', models.BooleanField(default=False, help_text='Whether members of the bots group may approve (never their own changes).')),
                ('created_at', models.DateTimeField(auto_now_add=True)),
                ('updated_at', models.DateTimeField(auto_now=True)),
                ('created_by', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to=settings.AUTH_USER_MODEL)),
                ('project', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, related_name='approval_policy', to='changeapi.project')),
            ],
            options={
                'verbose_name_plural': 'approval policies',
                'ordering': ['project_id'],
            },
        ),
        migrations.CreateModel(
            name='ApprovalPolicyGroup',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='auth.group')),
                ('policy', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='group_requirements', to='approvals.approvalpolicy')),
            ],
            options={
                'ordering': ['policy_id', 'group__name'],
            },
        ),
        migrations.AddField(
            model_name='approvalpolicy',
            name='required_groups',
            field=models.ManyToManyField(blank=True, related_name='+', through='approvals.ApprovalPolicyGroup', to='auth.group'),
        ),
        migrations.CreateModel(
            name='ApprovalRule',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('position', models.PositiveSmallIntegerField()),
                ('kind', models.CharField(choices=[('finding_severity_at_least', 'A finding of at least this severity'), ('lock_mode_at_least', 'A lock of at least this mode'), ('rewrites_table', 'A table rewrite'), ('scans_table', 'A full table scan')], max_length=32)),
                ('threshold', models.CharField(blank=True, max_length=32)),
                ('table', models.CharField(blank=True, max_length=200)),
                ('approvals', models.PositiveSmallIntegerField(default=1)),
                ('group', models.ForeignKey(on_delete=django.db.models.deletion.PROTECT, related_name='+', to='auth.group')),
                ('policy', models.ForeignKey(on_delete=django.db.models.deletion.CASCADE, related_name='rules', to='approvals.approvalpolicy')),
            ],
            options={
                'ordering': ['policy_id', 'position'],
            },
        ),
        migrations.AddConstraint(
            model_name='approvalpolicygroup',
            constraint=models.UniqueConstraint(fields=('policy', 'group'), name='approval_policy_group_unique'),
        ),
        migrations.AddConstraint(
            model_name='approvalrule',
            constraint=models.UniqueConstraint(fields=('policy', 'position'), name='approval_rule_position_unique'),
        ),
        migrations.AddConstraint(
            model_name='approvalrule',
            constraint=models.CheckConstraint(condition=models.Q(('kind__in', ['finding_severity_at_least', 'lock_mode_at_least', 'rewrites_table', 'scans_table'])), name='approval_rule_kind_valid'),
        ),
        migrations.AddConstraint(
            model_name='approvalrule',
            constraint=models.CheckConstraint(condition=models.Q(('approvals__gte', 1)), name='approval_rule_approvals_positive'),
        ),
    ]
