"""The dry-run report as typed serializers: what generated clients decode the report into."""

from __future__ import annotations

from rest_framework import serializers


class LockSerializer(serializers.Serializer):
    relation = serializers.CharField()
    relation_kind = serializers.CharField()
    table = serializers.CharField(allow_null=True)
    mode = serializers.CharField(help_text="PostgreSQL lock mode, e.g. AccessExclusiveLock.")
    acquired_by_statement = serializers.BooleanField()
    blocks_reads = serializers.BooleanField()
    blocks_writes = serializers.BooleanField()
    blocks_ddl = serializers.BooleanField()


class ScanSerializer(serializers.Serializer):
    table = serializers.CharField()
    count = serializers.IntegerField()


class StatementSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    migration = serializers.CharField()
    operation_index = serializers.IntegerField(allow_null=True)
    sql = serializers.CharField()
    transactional = serializers.BooleanField()
    transaction = serializers.IntegerField(allow_null=True)
    started_ms = serializers.FloatField()
    duration_ms = serializers.FloatField(allow_null=True)
    notices = serializers.ListField(child=serializers.CharField())
    locks = LockSerializer(many=True, required=False)
    rewrites = serializers.ListField(child=serializers.CharField(), required=False)
    rebuilt_indexes = serializers.ListField(child=serializers.CharField(), required=False)
    sequential_scans = ScanSerializer(many=True, required=False)
    created_relations = serializers.ListField(child=serializers.CharField(), required=False)
    dropped_relations = serializers.ListField(child=serializers.CharField(), required=False)
    error = serializers.CharField(required=False)


class ReportOperationSerializer(serializers.Serializer):
    index = serializers.IntegerField()
    type = serializers.CharField()
    description = serializers.CharField()
    executed = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)


class ReportMigrationSerializer(serializers.Serializer):
    app_label = serializers.CharField()
    name = serializers.CharField()
    atomic = serializers.BooleanField()
    operations = ReportOperationSerializer(many=True)
    started_ms = serializers.FloatField()
    finished_ms = serializers.FloatField(allow_null=True)


class LockSpanSerializer(serializers.Serializer):
    table = serializers.CharField(allow_null=True)
    relation = serializers.CharField()
    mode = serializers.CharField()
    statement_index = serializers.IntegerField()
    from_ms = serializers.FloatField()
    to_ms = serializers.FloatField()
    held_ms = serializers.FloatField()
    blocks_reads = serializers.BooleanField()
    blocks_writes = serializers.BooleanField()


class TableBlockingSerializer(serializers.Serializer):
    table = serializers.CharField()
    strongest_lock = serializers.CharField()
    reads_blocked_ms = serializers.FloatField()
    writes_blocked_ms = serializers.FloatField()


class ReportErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    sqlstate = serializers.CharField(allow_null=True)
    statement_index = serializers.IntegerField(allow_null=True)
    migration = serializers.CharField()
    operation_index = serializers.IntegerField(allow_null=True)


class ReportSummarySerializer(serializers.Serializer):
    migrations = serializers.IntegerField()
    operations = serializers.IntegerField()
    statements = serializers.IntegerField()
    rewrites = serializers.ListField(child=serializers.CharField())
    tables_scanned = serializers.ListField(child=serializers.CharField())
    data_steps_not_executed = serializers.IntegerField()


class DryRunReportSerializer(serializers.Serializer):
    engine = serializers.CharField()
    server = serializers.CharField()
    server_version = serializers.CharField()
    shadow_database = serializers.CharField()
    clone_ms = serializers.FloatField()
    started_at = serializers.DateTimeField()
    finished_at = serializers.DateTimeField()
    status = serializers.CharField()
    error = ReportErrorSerializer(allow_null=True)
    total_ms = serializers.FloatField()
    summary = ReportSummarySerializer()
    migrations = ReportMigrationSerializer(many=True)
    statements = StatementSerializer(many=True)
    lock_spans = LockSpanSerializer(many=True)
    tables = TableBlockingSerializer(many=True)
