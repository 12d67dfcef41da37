"""The report as Markdown for a pull-request comment: findings first, then the evidence.

A pure function of the report and the service's public address, so the same text can be
rendered for any dry-run, old or new, without the shadow database. Links are absolute: the
comment is read in another repository, where a relative `docs/...` link goes nowhere.
"""

from __future__ import annotations

import re

from changeapi.dryrun.analysis.held import held_by_statement
from changeapi.dryrun.contract import (
    SCHEMA_SNAPSHOT,
    Estimate,
    OnlineDdl,
    PatternPlan,
    PlanFailure,
    Report,
    SchemaSource,
    TableRemake,
)

SEVERITY_MARK = {"high": "🔴 high", "medium": "🟠 medium", "low": "🟡 low", "info": "🔵 info"}


def _cell(text: object, limit: int = 90) -> str:
    value = " ".join(str(text if text is not None else "").split()).replace("|", "\\|")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _code(text: object, limit: int = 90) -> str:
    """A table cell's text as inline code. MySQL quotes names in backticks, which would end a
    single-backtick span: the span is then delimited by a longer run of them, padded by spaces."""
    value = _cell(text, limit)
    runs = [len(run) for run in re.findall(r"`+", value)]
    if not runs:
        return f"`{value}`"
    fence = "`" * (max(runs) + 1)
    return f"{fence} {value} {fence}"


def _count(number: int, noun: str) -> str:
    """`1 finding`, `2 findings`."""
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _seconds(ms: float | None) -> str:
    if ms is None:
        return "–"
    return f"{ms:,.0f} ms" if ms < 1000 else f"{ms / 1000:,.2f} s"


def _fine(ms: float) -> str:
    return f"{ms:.1f} ms" if ms < 10 else _seconds(ms)


def _timing(duration_ms: float | None, estimate: Estimate | None) -> str:
    """One line per statement: what was measured, and what was estimated from it or why not."""
    measured = f"{_seconds(duration_ms)} on the shadow"
    if estimate is None:
        return measured if duration_ms is not None else "did not complete"
    if estimate.work_class == "catalog_only":
        if estimate.estimated_ms is None or estimate.low_ms is None or estimate.high_ms is None:
            return f"{measured}; catalog only, does not grow with table size"
        # Tenths of a millisecond: a catalog-only statement's estimate is often below one.
        spread = f"{_fine(estimate.low_ms)}–{_fine(estimate.high_ms)}"
        return f"{measured}; catalog only, does not grow with table size: about {_fine(estimate.estimated_ms)} ({spread})"
    if estimate.estimated_ms is None:
        return f"{measured}; {estimate.basis}"
    spread = f"{_seconds(estimate.low_ms)}–{_seconds(estimate.high_ms)}"
    return f"{measured}; about {_seconds(estimate.estimated_ms)} at production size ({spread}, {estimate.basis})"


def _absolute(link: str, public_url: str) -> str:
    """A link the service serves (`docs/findings.md#...`) as an address that works anywhere."""
    if link.startswith(("http://", "https://")):
        return link
    return f"{public_url.rstrip('/')}/{link.lstrip('/')}"


def _findings(report: Report, public_url: str) -> list[str]:
    if not report.findings:
        return ["#### Findings", "", "No findings.", ""]
    lines = ["#### Findings", "", "| Severity | Code | Statement | Finding |", "|---|---|---|---|"]
    for f in report.findings:
        # Statements are numbered from 1 for people; the report's indexes count from 0.
        where = f"#{f.statement_index + 1}" if f.statement_index is not None else _cell(f.migration or f.table)
        lines.append(
            f"| {SEVERITY_MARK.get(f.severity, f.severity)} | [{f.code}]({_absolute(f.docs, public_url)}) | {where} | {_cell(f.message, 400)} |"
        )
    lines.append("")
    for f in report.findings:
        alternative = f.safer_alternative
        lines += [f"<details><summary>{f.code} {_cell(f.title)}: {_cell(alternative.summary, 200)}</summary>", ""]
        lines += [f"{i}. {step}" for i, step in enumerate(alternative.steps, 1)]
        if alternative.example:
            start = alternative.example.lstrip()
            sql = start.upper().startswith(("ALTER", "CREATE", "UPDATE", "DROP", "SET", "--"))
            fence = "sql" if sql else "shell" if start.startswith(("pt-online-schema-change", "gh-ost")) else "python"
            lines += ["", f"```{fence}", alternative.example.rstrip(), "```"]
        lines += ["", "</details>", ""]
    return lines


def _schema_source(source: SchemaSource) -> str:
    """One line: which schema the change ran against, and why not the one asked for."""
    if source.schema == SCHEMA_SNAPSHOT:
        line = f"Schema: as production is (schema snapshot {source.snapshot}, uploaded {source.snapshot_uploaded_at})"
        if source.not_restored:
            line += f"; {_count(len(source.not_restored), 'object')} of it not restored on the shadow"
        return line
    line = "Schema: as the migrations say (the baseline's migrations replayed)"
    if source.fallback:
        line += f"; the project asks for its snapshot, but {_cell(source.fallback, 200)}"
    return line


def _schema_drift(report: Report) -> list[str]:
    """Drifted objects the change touches: production may do otherwise than this report shows."""
    drift = report.schema_drift
    if drift is None or not drift.touched:
        return []
    lines = [
        "#### Production has drifted",
        "",
        f"Per schema snapshot {drift.snapshot} ({_count(drift.drifted_objects, 'drifted object')} against baseline "
        f"v{drift.baseline_version}), the change touches:",
        "",
        "| Severity | Object | Statements | What it means |",
        "|---|---|---|---|",
    ]
    for w in drift.touched:
        where = ", ".join(f"#{index + 1}" for index in w.statement_indexes)
        lines.append(
            f"| {SEVERITY_MARK.get(w.severity, w.severity)} | {w.kind} {_cell(w.name, 60)} ({w.status}) | {where} "
            f"| {_cell(w.consequence, 400)} |"
        )
    return [*lines, ""]


VERDICT_MARK = {
    "regressed": "🔴 regressed",
    "broken": "🔴 broken",
    "improved": "🟢 improved",
    "unchanged": "⚪ unchanged",
    "invalid": "⚠️ invalid",
    "not_compared": "⚪ not compared",
}


def _seeded_failures(report: Report) -> list[str]:
    failed = [(s.index, f) for s in report.statements for f in s.seeded_failures]
    if not failed:
        return []
    lines = [
        "#### Failed only on seeded rows",
        "",
        "These statements failed on the shadow's synthetic rows; the rows were made to conform and the dry-run went "
        "on. Run each check on production before deploying: a count above 0 means the statement fails there.",
        "",
    ]
    for index, f in failed:
        lines += [
            f"- Statement #{index + 1}: {_code(f.error, 200)} ({f.sqlstate}) on {_count(f.seeded_rows, 'seeded row')}. "
            f"Fails in production if {_cell(f.fails_in_production_if, 200)}.",
            "",
            "  ```sql",
            f"  {f.production_check}",
            "  ```",
        ]
    return lines + [""]


def _plan_row(label: str, plan: PatternPlan | None) -> str:
    if plan is None:
        return f"| {label} | – | – | – | – |"
    if isinstance(plan, PlanFailure):
        return f"| {label} | fails: {_code(plan.error, 120)} | – | – | – |"
    indexes = ", ".join(plan.indexes) or "–"
    return f"| {label} | {_cell(plan.summary, 120)} | {_cell(indexes)} | {plan.total_cost:,.2f} | {plan.rows:,.0f} |"


def _access_patterns(report: Report) -> list[str]:
    block = report.access_patterns
    if block is None or not block.patterns:
        return []
    sizes = ", ".join(
        f"{t.table} {t.seed_rows:,} rows" if t.seed_rows is not None else f"{t.table} (not analysed)" for t in block.tables
    )
    production = ", ".join(f"{t.table} {t.production_rows:,}" for t in block.tables if t.production_rows is not None)
    lines = ["#### Access patterns", "", f"Plans (EXPLAIN, estimated) taken on the shadow at: {sizes or '–'}."]
    if production:
        lines[-1] += f" Production rows: {production}."
    lines.append("")
    for p in block.patterns:
        calls = f" · {p.weight:g} calls/s" if p.weight is not None else ""
        reasons = "; ".join(p.reasons)
        lines += [
            f"**{_cell(p.name)}**{calls} · {VERDICT_MARK.get(p.verdict, p.verdict)}"
            + (f": {_cell(reasons, 300)}" if reasons else ""),
            "",
            "| | Plan | Indexes | Cost | Rows |",
            "|---|---|---|---|---|",
            _plan_row("Before", p.before),
            _plan_row("After", p.after),
            "",
        ]
        lines += [f"- ⚠️ {_cell(w, 400)}" for w in p.warnings]
        if p.warnings:
            lines.append("")
    return lines


ENGINE_LABELS = {"postgresql": "PostgreSQL", "mariadb": "MariaDB", "mysql": "MySQL", "sqlite": "SQLite"}


def _remakes(report: Report) -> list[str]:
    """SQLite: the tables Django remade, and what the database's one write lock means."""
    if report.engine != "sqlite":
        return []
    lines = [
        "#### Database write lock",
        "",
        "SQLite has one writer per database: from each transaction's first write to its commit every other writer "
        "waits, whatever table it writes (shown on the database as RESERVED). Readers go on in WAL mode.",
        "",
    ]
    if not report.remakes:
        return lines
    lines += [
        "| Table remade | Statements | Time on the shadow | Rows copied | At production size |",
        "|---|---|---|---|---|",
    ]
    for r in report.remakes:
        numbers = ", ".join(f"#{i + 1}" for i in r.statement_indexes)
        rows = f"{r.rows:,}" if r.rows is not None else "–"
        lines.append(f"| {r.table} | {numbers} | {_seconds(r.duration_ms)} | {rows} | {_remake_estimate(r)} |")
    return lines + [""]


def _remake_estimate(remake: TableRemake) -> str:
    estimate = remake.estimate
    if estimate is None or estimate.estimated_ms is None or estimate.low_ms is None or estimate.high_ms is None:
        return "not estimated"
    return f"{_seconds(estimate.estimated_ms)} ({_seconds(estimate.low_ms)} to {_seconds(estimate.high_ms)})"


def _online_ddl(ddl: OnlineDdl | None) -> str:
    """MySQL/MariaDB: what the server allows for the statement, and what running it did."""
    if ddl is None:
        return ""
    if ddl.algorithm is None and ddl.lock is None:
        return f"not asked: {ddl.probe_error}" if ddl.probe_error else ""
    parts = [f"ALGORITHM={ddl.algorithm}" if ddl.algorithm else "", f"LOCK={ddl.lock}" if ddl.lock else ""]
    if ddl.rebuilt:
        parts.append(f"rebuilt ({ddl.rows_copied:,} rows copied)" if ddl.rows_copied else "rebuilt")
    if ddl.blocks_reads:
        parts.append("blocks reads and writes")
    elif ddl.blocks_writes:
        parts.append("blocks writes")
    return ", ".join(p for p in parts if p)


def _statements(report: Report) -> list[str]:
    lines = [
        "#### Statements",
        "",
        "| # | SQL | Work | Locks held | Time |",
        "|---|---|---|---|---|",
    ]
    remade = {index: r.table for r in report.remakes for index in r.statement_indexes}
    for s, held_locks in zip(report.statements, held_by_statement(report.statements), strict=True):
        held = ", ".join(f"{h.mode.removesuffix('Lock')} on {h.table}" for h in held_locks)
        if s.locks_source == "documented" and held:
            held += " (documented)"
        work = "; ".join(part for part in ((s.work_class or "").replace("_", " "), _online_ddl(s.online_ddl)) if part)
        if s.index in remade:
            work = f"remake of {remade[s.index]}"
        if s.commits_on_its_own:
            work = f"{work}; commits on its own" if work else "commits on its own"
        lines.append(
            f"| {s.index + 1} | {_code(s.sql)} | {work} | {_cell(held, 120)} | {_cell(_timing(s.duration_ms, s.estimate), 200)} |"
        )
    return lines + [""]


def _tables(report: Report) -> list[str]:
    if not report.tables:
        return []
    # Without table stats nothing is scaled, and a production column would only repeat the shadow's.
    estimated = report.summary.estimated_total_ms is not None
    where = "shadow / production" if estimated else "on the shadow"
    lines = [
        "#### Time each table is blocked",
        "",
        f"| Table | Strongest lock | Reads blocked ({where}) | Writes blocked ({where}) |",
        "|---|---|---|---|",
    ]
    for t in report.tables:
        reads, writes = _seconds(t.reads_blocked_ms), _seconds(t.writes_blocked_ms)
        if estimated:
            reads += f" / {_seconds(t.reads_blocked_estimated_ms)}"
            writes += f" / {_seconds(t.writes_blocked_estimated_ms)}"
        lines.append(f"| {t.table} | {t.strongest_lock} | {reads} | {writes} |")
    return lines + [""]


def _queue(report: Report) -> list[str]:
    if not report.lock_queue:
        return []
    lines = [
        "#### Lock queue risk",
        "",
        "| Table | Lock | Blocked qps | Pile-up | With lock_timeout | Recommended |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.lock_queue:
        lines.append(
            f"| {r.table} | {r.lock_mode} | {r.blocked_queries_per_second:g} | {r.pile_up_queries:,} queries | "
            f"{r.pile_up_with_timeout_queries:,} | lock_timeout {r.recommended_lock_timeout_ms} ms, "
            f"{r.recommended_retries} retries |"
        )
    return lines + [""]


def _bytes(count: int) -> str:
    return f"{count / 2**20:,.1f} MiB" if count >= 2**20 else f"{count / 1024:,.1f} KiB"


def _backfills(report: Report) -> list[str]:
    """Each Backfill step: its sampled batches, the whole backfill, the recommendation, parity."""
    lines: list[str] = []
    for b in report.backfills:
        locks = [batch.lock_ms for batch in b.batches]
        lines += [
            f"#### Backfill of {b.model} (`{b.migration}`, batches of {b.batch_size:,} by {b.key_column})",
            "",
            f"Sampled {_count(len(b.batches), 'batch')} ({b.sampled_rows:,} of {b.rows_matched:,} matching rows on the shadow): "
            + (f"locks held {_seconds(min(locks))}–{_seconds(max(locks))} per batch, " if locks else "")
            + f"{_bytes(b.sampled_wal_bytes)} of WAL.",
        ]
        scale = b.at_production
        if scale is not None:
            lines.append(
                f"At production size: {scale.rows:,} rows in {scale.batches:,} batches, about {_seconds(scale.total_ms)} "
                f"({_seconds(scale.low_ms)}–{_seconds(scale.high_ms)}; pauses {_seconds(scale.pauses_ms)}), "
                f"each batch locking its rows about {_seconds(scale.batch_ms)} (up to {_seconds(scale.batch_high_ms)})."
            )
        else:
            lines.append(f"On the shadow's rows: about {_seconds(b.shadow_total_ms)}; {b.estimate_basis}.")
        lines.append(f"Recommended: {_cell(b.recommendation, 400)}.")
        if b.parity is not None:
            verdict = "holds" if b.parity.holds_in_sampled_range else f"**fails**: {b.parity.in_sampled_range:,} rows left"
            lines.append(
                f"Parity ({_code(b.parity.condition)}): {b.parity.before:,} → {b.parity.after:,} rows; "
                f"in the sampled range it {verdict}."
            )
        lines.append("")
    return lines


def _reversibility(report: Report) -> list[str]:
    if not report.reversibility:
        return []
    lines = ["#### Reversibility", ""]
    for r in report.reversibility:
        state = "reversible" if r.reversible else ("irreversible" if r.checked else "not checked")
        lines.append(f"- `{r.migration}`: **{state}**" + (f" — {_cell(r.reason, 600)}" if r.reason else ""))
        for loss in r.data_loss:
            lines.append(f"  - {loss}")
        if r.backwards_sql:
            lines += ["", "  ```sql", *[f"  {sql};" for sql in r.backwards_sql], "  ```"]
    return lines + [""]


def _model(report: Report) -> list[str]:
    estimation = report.estimation
    if estimation is None:
        return []
    lines = ["<details><summary>Estimation model</summary>", "", estimation.description, ""]
    if estimation.exponents:
        sizes = " and ".join(f"{s.rows:,} rows ({s.bytes / 2**20:,.1f} MiB)" for s in estimation.calibration_sizes)
        lines.append(f"Calibrated on this server at {sizes}:")
        lines += [
            f"- {e.work_class}: {e.law or 'linear'} in rows, c = {e.fixed_ms} ms, "
            f"a = {e.coefficient_ms:.3g} ms per {'row * log2 rows' if e.law == 'n_log_n' else 'row'}, "
            f"deviation {e.deviation:+.3f} (fitted {e.residual:+.3f}), noise {e.noise:.0%}"
            for e in estimation.exponents
        ]
        lines.append(
            f"Server noise {estimation.noise:.0%}; no range is narrower than x{estimation.range_floor:g}; "
            f"bytes share b = {estimation.bytes_share:g}; every range widened by {estimation.jitter_ms:g} ms."
        )
        if estimation.catalog_only is not None:
            cost = estimation.catalog_only
            lines.append(
                f"Catalog-only statements: {cost.median_ms:.2f} ms, the median of {cost.runs} timed on this server "
                f"(10th-90th percentile {cost.low_ms:.2f}-{cost.high_ms:.2f} ms, slowest {cost.max_ms:.2f} ms)."
            )
    elif report.engine in ("mariadb", "mysql"):
        lines.append("Not calibrated on this server: each statement is scaled from its own timings (see above).")
    else:
        lines.append("Not calibrated: no table stats were uploaded, so the shadow was not seeded.")
    shaped = [t for t in estimation.seeded_tables if t.columns_from_stats or t.columns_by_default]
    if shaped:
        lines += ["", "Seeded columns (from uploaded column statistics, or the seeder's defaults):"]
        lines += [
            f"- {t.table}: statistics: {', '.join(t.columns_from_stats) or 'none'}; "
            f"defaults: {', '.join(t.columns_by_default) or 'none'}"
            for t in shaped
        ]
    return lines + ["", "</details>", ""]


def _failed_at(statement_index: int | None) -> str:
    return f" at statement {statement_index + 1}" if statement_index is not None else ""


def report_markdown(report: Report, *, public_url: str) -> str:
    """The whole report as GitHub-flavoured Markdown, its links under `public_url` (the
    service's `SCHEMAGATE_PUBLIC_URL`, which serves the docs pages they point at)."""
    summary = report.summary
    high = sum(1 for f in report.findings if f.severity == "high")
    headline = f"### Schemagate dry-run: {report.status}"
    facts = [
        _count(summary.statements, "statement"),
        _count(len(report.findings), "finding") + (f" ({high} high)" if high else ""),
        f"{_seconds(report.total_ms)} on the shadow",
    ]
    if summary.estimated_total_ms is not None:
        facts.append(f"about {_seconds(summary.estimated_total_ms)} at production size")
    if report.schema_drift is not None and report.schema_drift.touched:
        # At a glance: the section below says which objects, and what production may do instead.
        facts.append(f"⚠️ touches {_count(len(report.schema_drift.touched), 'object')} production has otherwise")
    lines = [
        headline,
        "",
        " · ".join(facts),
        "",
        f"{ENGINE_LABELS.get(report.engine, report.engine)} {report.server_version} on {report.server}",
        "",
    ]
    if report.schema_source is not None:
        lines += [_schema_source(report.schema_source), ""]
    error = report.error
    if error is not None:
        lines += [
            f"> **Failed**{_failed_at(error.statement_index)}: {_code(error.message, 300)}"
            + (f" ({error.sqlstate})" if error.sqlstate else ""),
            "",
        ]
    lines += _findings(report, public_url)
    for part in (
        _schema_drift,
        _seeded_failures,
        _access_patterns,
        _statements,
        _remakes,
        _tables,
        _backfills,
        _queue,
        _reversibility,
        _model,
    ):
        lines += part(report)
    return "\n".join(lines).rstrip() + "\n"
