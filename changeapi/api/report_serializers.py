"""The dry-run report as typed serializers: what generated clients decode the report into.

They mirror the report contract (`changeapi.dryrun.contract`), field for field; a test walks
both and fails on any difference. Keys a report has only in some cases (a failed
statement's locks) are optional (`required=False`).
"""

from __future__ import annotations

from rest_framework import serializers

from changeapi.dryrun.access_patterns import VERDICTS
from changeapi.dryrun.access_patterns.explain import SCAN_METHODS
from changeapi.dryrun.analysis.classify import WORK_CLASSES
from changeapi.dryrun.analysis.findings import CATALOG, SEVERITIES
from changeapi.models import DryRunSchema

LOCK_SOURCES = [
    ("observed", "Observed on the shadow: read from pg_locks; on SQLite, a second connection could not start a write"),
    (
        "documented",
        "The engine's documented lock for the statement (PostgreSQL's lock table, SQLite's one writer, InnoDB's row locks)",
    ),
    ("server", "MySQL/MariaDB: the weakest LOCK= the server accepted for the statement"),
]
EVENT_KINDS = ["rewrite", "verify", "fk_validation", "index_build"]


class LockSerializer(serializers.Serializer):
    relation = serializers.CharField()
    relation_kind = serializers.CharField()
    table = serializers.CharField(allow_null=True)
    mode = serializers.CharField(help_text="PostgreSQL lock mode, e.g. AccessExclusiveLock.")
    blocks_reads = serializers.BooleanField()
    blocks_writes = serializers.BooleanField()
    blocks_ddl = serializers.BooleanField()
    source = serializers.ChoiceField(choices=LOCK_SOURCES, required=False)  # type: ignore[assignment]  # a field, not Field.source


class HeldLockSerializer(serializers.Serializer):
    """The strongest lock on an existing table, and the statement that took it."""

    table = serializers.CharField()
    mode = serializers.CharField()
    blocks_reads = serializers.BooleanField()
    blocks_writes = serializers.BooleanField()
    source = serializers.ChoiceField(choices=LOCK_SOURCES)  # type: ignore[assignment]  # a field, not Field.source
    statement_index = serializers.IntegerField(required=False)


class TransactionSerializer(serializers.Serializer):
    """One transaction of the run, and the locks it held until it released them."""

    id = serializers.IntegerField()
    migration = serializers.CharField()
    first_statement = serializers.IntegerField()
    last_statement = serializers.IntegerField()
    committed = serializers.BooleanField(help_text="False when a failure rolled it back at the end of the run.")
    released_ms = serializers.FloatField()
    estimated_released_ms = serializers.FloatField()
    held = HeldLockSerializer(many=True, help_text="The strongest lock per existing table when it ended.")


class StatementEventSerializer(serializers.Serializer):
    """What PostgreSQL said it did (client_min_messages = debug1)."""

    kind = serializers.ChoiceField(choices=EVENT_KINDS)
    table = serializers.CharField(allow_null=True)
    object = serializers.CharField(allow_null=True)


class StatementEstimateSerializer(serializers.Serializer):
    """Measured time on the shadow and the estimate at production size, with its basis."""

    work_class = serializers.ChoiceField(choices=WORK_CLASSES)
    measured_ms = serializers.FloatField()
    estimated_ms = serializers.FloatField(allow_null=True)
    low_ms = serializers.FloatField(allow_null=True)
    high_ms = serializers.FloatField(allow_null=True)
    scale = serializers.FloatField(allow_null=True, help_text="Production bytes / shadow bytes of the tables worked on.")
    exponent = serializers.FloatField(allow_null=True, help_text="The growth applied, as an exponent of rows_scale.")
    basis = serializers.CharField()
    rows_scale = serializers.FloatField(allow_null=True, help_text="Production rows / shadow rows of the tables worked on.")
    width_scale = serializers.FloatField(
        allow_null=True, help_text="The factor for production's bytes per row against the shadow's (bytes share applied)."
    )
    law = serializers.CharField(allow_null=True, help_text="Growth law in rows: constant, linear or n_log_n.")
    range_factor = serializers.FloatField(
        allow_null=True, help_text="low = estimate / factor, high = estimate * factor, each widened by the jitter."
    )


class ScanSerializer(serializers.Serializer):
    table = serializers.CharField()
    count = serializers.IntegerField()


class SeededDataFailureSerializer(serializers.Serializer):
    """The statement failed on the shadow only because of synthetic rows; they were made to
    conform and it ran again. `production_check` counts the rows that would make it fail in
    production."""

    kind = serializers.ChoiceField(choices=["value_too_long", "duplicate_values", "null_values"])
    sqlstate = serializers.CharField()
    error = serializers.CharField(help_text="The database's message on the seeded rows.")
    table = serializers.CharField()
    columns = serializers.ListField(child=serializers.CharField())
    seeded_rows = serializers.IntegerField(help_text="Seeded rows changed to satisfy the statement.")
    fails_in_production_if = serializers.CharField()
    production_check = serializers.CharField(help_text="Read-only SQL for production: a count above 0 means it fails there.")


class DdlRefusalSerializer(serializers.Serializer):
    clause = serializers.CharField(help_text="The clause refused, e.g. ALGORITHM=INSTANT or LOCK=NONE.")
    code = serializers.IntegerField(help_text="The server's error number (1845, 1846 or 1847).")
    message = serializers.CharField(help_text="The server's message, with its reason.")


class OnlineDdlSerializer(serializers.Serializer):
    table = serializers.CharField()
    algorithm = serializers.CharField(
        allow_null=True, help_text="The most efficient ALGORITHM the server accepted: INSTANT, NOCOPY, INPLACE or COPY."
    )
    lock = serializers.CharField(allow_null=True, help_text="The weakest LOCK the server accepted: NONE, SHARED or EXCLUSIVE.")
    refusals = DdlRefusalSerializer(many=True)
    probe_error = serializers.CharField(
        required=False,
        help_text="Why the statement could not be tried on a copy of its table; then algorithm or lock may be null.",
    )
    blocks_reads = serializers.BooleanField(allow_null=True)
    blocks_writes = serializers.BooleanField(allow_null=True)
    table_id_before = serializers.IntegerField(allow_null=True)
    table_id_after = serializers.IntegerField(allow_null=True)
    rebuilt = serializers.BooleanField(allow_null=True, help_text="The InnoDB table id changed: the table was rebuilt.")
    rows_copied = serializers.IntegerField(allow_null=True, help_text="Rows the server passed through a copy (Records: N).")
    observed_blocks_reads = serializers.BooleanField(
        allow_null=True, help_text="A read from another session waited while it ran; null when it was over too soon to observe."
    )
    observed_blocks_writes = serializers.BooleanField(
        allow_null=True, help_text="A write from another session waited while it ran; null when it was over too soon to observe."
    )
    observed_read_wait_ms = serializers.FloatField(allow_null=True, help_text="The longest a read from another session waited.")
    observed_write_wait_ms = serializers.FloatField(allow_null=True, help_text="The longest a write from another session waited.")
    probe_ms = serializers.FloatField(
        allow_null=True,
        help_text="How long the accepted ALGORITHM took on a one-row copy of the table: the fixed cost the estimate does not scale.",
    )


class TableRemakeSerializer(serializers.Serializer):
    """SQLite: Django's remake of one table (new__ table, copy, drop, rename, indexes again)."""

    table = serializers.CharField()
    migration = serializers.CharField()
    operation_index = serializers.IntegerField(allow_null=True)
    statement_indexes = serializers.ListField(child=serializers.IntegerField(), help_text="The remake's statements, from 0.")
    duration_ms = serializers.FloatField(help_text="The sum of its statements' times on the shadow.")
    rows = serializers.IntegerField(allow_null=True, help_text="Rows the copy moved on the shadow.")
    estimate = StatementEstimateSerializer(
        required=False,
        help_text="At production size: the sum of its statements' estimates; absent on reports made before it was estimated.",
    )


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
    transaction_boundary = serializers.BooleanField(
        required=False, help_text="Present (true) when the statement ended the migration's transaction; the run stops there."
    )
    command = serializers.CharField(required=False, help_text="The SQL command, as PostgreSQL's parser reads it.")
    target_tables = serializers.ListField(child=serializers.CharField(), required=False)
    concurrently = serializers.BooleanField(required=False)
    events = StatementEventSerializer(many=True, required=False)
    locks_source = serializers.CharField(
        required=False,
        help_text="observed (pg_locks, in a transaction), documented (outside one: PostgreSQL's documentation) or "
        "server (MySQL/MariaDB: the weakest LOCK= the server accepted for the statement; an UPDATE or DELETE has "
        "InnoDB's documented row locks); on SQLite observed means a "
        "second connection could not start a write.",
    )
    volatile_default_columns = serializers.ListField(child=serializers.CharField(), required=False)
    work_class = serializers.ChoiceField(choices=WORK_CLASSES, required=False)
    work_tables = serializers.ListField(child=serializers.CharField(), required=False)
    evidence = serializers.CharField(required=False, allow_blank=True)
    estimate = StatementEstimateSerializer(required=False)
    seeded_failures = SeededDataFailureSerializer(many=True, required=False)
    commits_on_its_own = serializers.BooleanField(
        required=False, help_text="Present (true) on MySQL/MariaDB DDL: not transactional, it committed on its own."
    )
    online_ddl = OnlineDdlSerializer(required=False, help_text="MySQL/MariaDB: how the server runs this DDL statement.")


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
    blocks_ddl = serializers.BooleanField(required=False)
    estimated_from_ms = serializers.FloatField(required=False)
    estimated_to_ms = serializers.FloatField(required=False)
    estimated_held_ms = serializers.FloatField(required=False)
    source = serializers.ChoiceField(choices=LOCK_SOURCES, required=False)  # type: ignore[assignment]  # a field, not Field.source
    new_relation = serializers.BooleanField(required=False, help_text="A relation the change created: blocks nobody.")


class TableBlockingSerializer(serializers.Serializer):
    table = serializers.CharField()
    strongest_lock = serializers.CharField()
    reads_blocked_ms = serializers.FloatField()
    writes_blocked_ms = serializers.FloatField()
    reads_blocked_estimated_ms = serializers.FloatField(required=False)
    writes_blocked_estimated_ms = serializers.FloatField(required=False)


class FindingCountsSerializer(serializers.Serializer):
    high = serializers.IntegerField()
    medium = serializers.IntegerField()
    low = serializers.IntegerField()
    info = serializers.IntegerField()


class SaferAlternativeSerializer(serializers.Serializer):
    summary = serializers.CharField()
    steps = serializers.ListField(child=serializers.CharField())
    example = serializers.CharField(allow_blank=True, help_text="Migration code or SQL for this change, done the safer way.")


class FindingSerializer(serializers.Serializer):
    """One rule of the catalog (docs/findings.md) that this change triggers."""

    code = serializers.ChoiceField(choices=sorted(CATALOG))
    rule = serializers.CharField()
    title = serializers.CharField()
    severity = serializers.ChoiceField(choices=SEVERITIES)
    message = serializers.CharField()
    migration = serializers.CharField(allow_null=True)
    operation_index = serializers.IntegerField(allow_null=True)
    statement_index = serializers.IntegerField(allow_null=True)
    table = serializers.CharField(allow_null=True)
    safer_alternative = SaferAlternativeSerializer()
    docs = serializers.CharField()


class ExponentSerializer(serializers.Serializer):
    work_class = serializers.CharField()
    exponent = serializers.FloatField()
    small_ms = serializers.FloatField()
    large_ms = serializers.FloatField()
    fixed_ms = serializers.FloatField()
    note = serializers.CharField(allow_blank=True)
    law = serializers.CharField(allow_blank=True, help_text="Growth law in rows: linear or n_log_n.")
    formula = serializers.CharField(allow_blank=True)
    coefficient_ms = serializers.FloatField(help_text="Time per unit of the law (a row, or a row * log2 rows).")
    deviation = serializers.FloatField(help_text="Growth beyond the law applied, as an exponent of the rows' growth.")
    residual = serializers.FloatField(help_text="The deviation as fitted, before bounds.")
    noise = serializers.FloatField(help_text="Relative spread of repeated timings.")


class CalibrationSizeSerializer(serializers.Serializer):
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()


class CatalogOnlyCostSerializer(serializers.Serializer):
    """What a catalog-only statement costs on the shadow server, timed at template build."""

    median_ms = serializers.FloatField(help_text="The constant a catalog-only statement is estimated at.")
    low_ms = serializers.FloatField(help_text="10th percentile of the timings.")
    high_ms = serializers.FloatField(help_text="90th percentile of the timings.")
    max_ms = serializers.FloatField()
    runs = serializers.IntegerField(help_text="How many catalog-only statements were timed.")


class SeededTableSerializer(serializers.Serializer):
    table = serializers.CharField()
    rows = serializers.IntegerField()
    bytes = serializers.IntegerField()
    columns_from_stats = serializers.ListField(
        child=serializers.CharField(), help_text="Columns shaped by uploaded column statistics."
    )
    columns_by_default = serializers.ListField(
        child=serializers.CharField(),
        help_text="Columns seeded with the documented defaults (no statistics uploaded for them).",
    )


class EstimationSerializer(serializers.Serializer):
    """The model used to scale measured times to production size, and how it was calibrated."""

    description = serializers.CharField()
    calibrated = serializers.BooleanField()
    estimated = serializers.BooleanField(help_text="Every statement has an estimate at production size.")
    calibration_sizes = CalibrationSizeSerializer(many=True)
    exponents = ExponentSerializer(many=True)
    overhead_ms = serializers.FloatField()
    maintenance_work_mem_bytes = serializers.IntegerField(allow_null=True)
    seeded_tables = SeededTableSerializer(many=True)
    seed_warnings = serializers.ListField(child=serializers.CharField())
    noise = serializers.FloatField(help_text="The server's relative spread of repeated timings at calibration.")
    range_floor = serializers.FloatField(help_text="The least range factor of any estimate.")
    bytes_share = serializers.FloatField(help_text="Share of per-row time assumed to follow bytes per row.")
    jitter_ms = serializers.FloatField(help_text="The absolute widening of every range.")
    catalog_only = CatalogOnlyCostSerializer(
        allow_null=True, help_text="Null on templates calibrated before catalog-only statements were timed."
    )


class LockQueueRiskSerializer(serializers.Serializer):
    """Queries piling up behind a blocking lock request, from uploaded production activity."""

    table = serializers.CharField()
    lock_mode = serializers.CharField()
    queries_per_second = serializers.FloatField()
    blocked_queries_per_second = serializers.FloatField()
    oldest_transaction_seconds = serializers.FloatField(allow_null=True)
    estimated_hold_ms = serializers.FloatField()
    worst_case_wait_ms = serializers.FloatField()
    pile_up_queries = serializers.IntegerField()
    pile_up_with_timeout_queries = serializers.IntegerField()
    recommended_lock_timeout_ms = serializers.IntegerField()
    recommended_retries = serializers.IntegerField()
    retry_backoff_ms = serializers.IntegerField()
    note = serializers.CharField(allow_blank=True)


class ReversibilitySerializer(serializers.Serializer):
    """Whether a migration can be rolled back, and the backwards SQL run on the shadow."""

    migration = serializers.CharField()
    reversible = serializers.BooleanField()
    checked = serializers.BooleanField()
    reason = serializers.CharField(allow_blank=True)
    backwards_sql = serializers.ListField(child=serializers.CharField())
    data_loss = serializers.ListField(child=serializers.CharField())
    backwards_ms = serializers.FloatField(allow_null=True)
    data_steps_not_executed = serializers.IntegerField()


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
    estimated_total_ms = serializers.FloatField(allow_null=True, required=False)
    findings = FindingCountsSerializer(required=False)
    reversible = serializers.BooleanField(required=False)


class PlanNodeSerializer(serializers.Serializer):
    depth = serializers.IntegerField()
    node_type = serializers.CharField(help_text="PostgreSQL's node type, e.g. Index Scan, Seq Scan, Hash Join.")
    label = serializers.CharField()  # type: ignore[assignment]  # a field, not Field.label
    relation = serializers.CharField(allow_null=True)
    index = serializers.CharField(allow_null=True)
    condition = serializers.CharField(allow_null=True, help_text="Index, join and filter conditions, as PostgreSQL prints them.")
    startup_cost = serializers.FloatField()
    total_cost = serializers.FloatField()
    rows = serializers.FloatField(help_text="The planner's estimate of rows out of this node.")


class PlanScanSerializer(serializers.Serializer):
    table = serializers.CharField()
    scan_method = serializers.ChoiceField(choices=sorted(SCAN_METHODS.values()))
    indexes = serializers.ListField(child=serializers.CharField())
    rows = serializers.FloatField()


class PatternPlanSerializer(serializers.Serializer):
    """One plan of a pattern (EXPLAIN, no ANALYZE), or the error PostgreSQL gave instead."""

    summary = serializers.CharField(required=False)
    total_cost = serializers.FloatField(required=False)
    startup_cost = serializers.FloatField(required=False)
    rows = serializers.FloatField(required=False)
    node_types = serializers.ListField(child=serializers.CharField(), required=False)
    indexes = serializers.ListField(child=serializers.CharField(), required=False)
    scans = PlanScanSerializer(many=True, required=False)
    nodes = PlanNodeSerializer(many=True, required=False)
    error = serializers.CharField(required=False)
    sqlstate = serializers.CharField(required=False, allow_null=True)


class PatternTableSizeSerializer(serializers.Serializer):
    """The size a table was planned at on the shadow, beside its production size."""

    table = serializers.CharField()
    seed_rows = serializers.IntegerField(allow_null=True, help_text="reltuples when planned; null if never analysed.")
    seed_pages = serializers.IntegerField()
    production_rows = serializers.IntegerField(allow_null=True, help_text="From table stats; null without them.")


class AccessPatternResultSerializer(serializers.Serializer):
    name = serializers.CharField()
    sql = serializers.CharField()
    orm = serializers.CharField(allow_blank=True)
    weight = serializers.FloatField(allow_null=True, help_text="Calls per second in production.")
    verdict = serializers.ChoiceField(choices=VERDICTS)
    reasons = serializers.ListField(child=serializers.CharField())
    cost_ratio = serializers.FloatField(allow_null=True)
    before = PatternPlanSerializer()
    after = PatternPlanSerializer(allow_null=True)
    tables = PatternTableSizeSerializer(many=True)
    warnings = serializers.ListField(child=serializers.CharField(), help_text="Where production's plan may differ.")


class VerdictCountsSerializer(serializers.Serializer):
    unchanged = serializers.IntegerField()
    improved = serializers.IntegerField()
    regressed = serializers.IntegerField()
    broken = serializers.IntegerField()
    invalid = serializers.IntegerField()
    not_compared = serializers.IntegerField()


class AccessPatternsReportSerializer(serializers.Serializer):
    """The project's key queries explained before and after the change, and at what sizes."""

    note = serializers.CharField()
    seed_max_rows = serializers.IntegerField(allow_null=True)
    tables = PatternTableSizeSerializer(many=True)
    planner_settings = serializers.DictField(child=serializers.CharField())
    regression_factor = serializers.FloatField()
    large_table_rows = serializers.IntegerField()
    verdicts = VerdictCountsSerializer()
    patterns = AccessPatternResultSerializer(many=True)


class DriftWarningSerializer(serializers.Serializer):
    kind = serializers.CharField()
    status = serializers.CharField()
    severity = serializers.CharField()
    name = serializers.CharField()
    table = serializers.CharField(allow_null=True)
    detail = serializers.CharField()
    consequence = serializers.CharField(help_text="What the drift means for this change in production.")
    statement_indexes = serializers.ListField(child=serializers.IntegerField(), help_text="The statements that touch it.")


class SchemaDriftSerializer(serializers.Serializer):
    """The project's latest schema snapshot against the baseline: the drifted objects the change touches."""

    snapshot = serializers.IntegerField()
    snapshot_uploaded_at = serializers.DateTimeField()
    baseline_version = serializers.IntegerField()
    drifted_objects = serializers.IntegerField(help_text="All drifted objects of the snapshot, touched or not.")
    touched = DriftWarningSerializer(many=True)


class BackfillBatchSerializer(serializers.Serializer):
    """One sampled batch, run in a transaction of its own on the clone."""

    index = serializers.IntegerField()
    after_key = serializers.CharField(allow_null=True, help_text="Exclusive lower bound of the ordering key; null for the first.")
    to_key = serializers.CharField(help_text="Inclusive upper bound of the ordering key, as text.")
    keys = serializers.IntegerField(help_text="Keys the batch spans: batch_size, fewer for the last.")
    rows = serializers.IntegerField(help_text="Rows of them the filter matched, which the UPDATE set.")
    rows_locked = serializers.IntegerField(help_text="Rows the UPDATE changed, each locked until the batch commits.")
    duration_ms = serializers.FloatField(help_text="The whole batch: its upper key, the UPDATE and the commit.")
    lock_ms = serializers.FloatField(help_text="The UPDATE until its commit: how long the batch's rows stay locked.")
    wal_bytes = serializers.IntegerField(help_text="WAL inserted during the batch (pg_current_wal_insert_lsn() difference).")
    locks = LockSerializer(many=True, help_text="Relation locks the batch's transaction held.")


class ParityCheckSerializer(serializers.Serializer):
    condition = serializers.CharField()
    before = serializers.IntegerField(help_text="Rows the parity check counted before the sample.")
    after = serializers.IntegerField(help_text="Rows it counted after the sample.")
    in_sampled_range = serializers.IntegerField(help_text="Rows it counted among the keys the sample covered.")
    holds_in_sampled_range = serializers.BooleanField(
        help_text="False: the assignments leave rows the check counts, so the backfill would never reach zero."
    )
    count_sql = serializers.CharField(
        required=False,
        help_text="The count as compiled on the clone, values quoted: what a release bundle's preflight runs on the target.",
    )


class BackfillAtScaleSerializer(serializers.Serializer):
    """The whole backfill at production size: batches x (batch time + pause), with a range."""

    rows = serializers.IntegerField(help_text="Production rows the filter is taken to match (the shadow's share).")
    batches = serializers.IntegerField(help_text="Production's rows over the batch size: every key is walked.")
    batch_ms = serializers.FloatField(help_text="One batch's lock time at production size, at the declared batch size.")
    batch_low_ms = serializers.FloatField()
    batch_high_ms = serializers.FloatField()
    work_ms = serializers.FloatField(help_text="All batches' work, without the pauses.")
    pauses_ms = serializers.FloatField()
    total_ms = serializers.FloatField()
    low_ms = serializers.FloatField()
    high_ms = serializers.FloatField()
    rows_scale = serializers.FloatField(help_text="Production's rows over the keys sampled.")
    width_scale = serializers.FloatField()
    law = serializers.CharField()
    range_factor = serializers.FloatField()
    basis = serializers.CharField()


class BackfillTimingSerializer(serializers.Serializer):
    """A Backfill step sampled on the clone after its migration committed."""

    migration = serializers.CharField()
    operation_index = serializers.IntegerField()
    model = serializers.CharField()
    table = serializers.CharField()
    key_column = serializers.CharField(help_text="The ordering key batches are cut on.")
    batch_size = serializers.IntegerField()
    pause_ms = serializers.IntegerField()
    sql = serializers.CharField(
        help_text="One batch's UPDATE as it ran: the second, with both keyset bounds, when there was one."
    )
    rows_total = serializers.IntegerField(help_text="The table's rows on the shadow.")
    rows_matched = serializers.IntegerField(help_text="Rows the filter matched on the shadow before the sample.")
    batches = BackfillBatchSerializer(many=True)
    sampled_rows = serializers.IntegerField()
    sampled_wal_bytes = serializers.IntegerField()
    sampled_keys = serializers.IntegerField(help_text="Keys the sampled batches spanned.")
    covers_all_rows = serializers.BooleanField(help_text="True when the sample reached the last key of the shadow's table.")
    shadow_batches = serializers.IntegerField()
    shadow_total_ms = serializers.FloatField(help_text="The whole backfill on the shadow's rows, pauses included.")
    parity = ParityCheckSerializer(required=False, help_text="Present when the step has a parity check.")
    target_lock_ms = serializers.IntegerField(help_text="The project's target lock time per batch.")
    recommended_batch_size = serializers.IntegerField(allow_null=True)
    recommendation = serializers.CharField()
    at_production = BackfillAtScaleSerializer(required=False, help_text="Present when table stats allow an estimate.")
    estimate_basis = serializers.CharField()


class SchemaSourceSerializer(serializers.Serializer):
    """Which schema the dry-run's template had: the baseline's migrations replayed, or the latest snapshot restored."""

    schema = serializers.ChoiceField(
        choices=DryRunSchema.choices,
        help_text="migrations: as the migrations say (the baseline replayed); snapshot: as production is "
        "(the project's latest schema snapshot restored).",
    )
    requested = serializers.ChoiceField(choices=DryRunSchema.choices, help_text="The project's dry_run_schema.")
    snapshot = serializers.IntegerField(required=False, help_text="The schema snapshot restored, when schema is snapshot.")
    snapshot_sha256 = serializers.CharField(required=False)
    snapshot_uploaded_at = serializers.DateTimeField(required=False)
    fallback = serializers.CharField(
        required=False, help_text="Why the snapshot the project asks for was not used (then schema is migrations)."
    )
    not_restored = serializers.ListField(
        child=serializers.CharField(),
        required=False,
        help_text="What of the snapshot the shadow could not have (an extension's type or index method, ...).",
    )


class DryRunReportSerializer(serializers.Serializer):
    report_version = serializers.IntegerField(help_text="The report contract's version; reports stored without one read as 1.")
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
    transactions = TransactionSerializer(
        many=True, required=False, help_text="Absent from reports before version 3, which listed held locks per statement."
    )
    estimation = EstimationSerializer(required=False)
    lock_queue = LockQueueRiskSerializer(many=True, required=False)
    reversibility = ReversibilitySerializer(many=True, required=False)
    findings = FindingSerializer(many=True, required=False)
    access_patterns = AccessPatternsReportSerializer(required=False)
    schema_drift = SchemaDriftSerializer(
        required=False, help_text="Present when the project has a schema snapshot: the drifted objects the change touches."
    )
    backfills = BackfillTimingSerializer(many=True, required=False, help_text="Present when the change has Backfill steps.")
    schema_source = SchemaSourceSerializer(
        required=False, help_text="Which schema the change ran against; absent from reports made before it was recorded."
    )
    remakes = TableRemakeSerializer(
        many=True, required=False, help_text="SQLite: the tables Django remade; absent when none (and on other engines)."
    )
