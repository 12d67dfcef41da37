"""MySQL/MariaDB estimates at production size, as pure functions of a traced statement, the
clone's rows and bytes and the uploaded sizes: the class of work follows what the server said
of the statement, and the time scales by that class's law from the clone's rows to production's."""

from __future__ import annotations

import math

import pytest

from changeapi.dryrun.analysis.mysql_estimate import (
    analyse_mysql_statements,
    classify_mysql_statement,
    estimate_mysql_statement,
    mysql_model_summary,
)
from changeapi.dryrun.contract import Estimate, OnlineDdl, StatementTrace
from changeapi.dryrun.mysql_tables import MySqlTableFacts
from changeapi.dryrun.profile import ProductionProfile, TableFigures

CLONE_ROWS = 100_000
CLONE = MySqlTableFacts(rows={"shop_order": CLONE_ROWS}, total_bytes={"shop_order": 10_000_000})


def _statement(sql: str, duration_ms: float, ddl: OnlineDdl | None = None, index: int = 0) -> StatementTrace:
    return StatementTrace(
        index=index,
        migration="shop.0002_step",
        operation_index=0,
        sql=sql,
        command=" ".join(sql.split()[:2]).upper(),
        transactional=False,
        transaction=None,
        started_ms=0.0,
        duration_ms=duration_ms,
        notices=(),
        commits_on_its_own=True,
        online_ddl=ddl,
    )


def _ddl(algorithm: str, *, rebuilt: bool, probe_ms: float = 4.0, lock: str = "NONE") -> OnlineDdl:
    return OnlineDdl(table="shop_order", algorithm=algorithm, lock=lock, rebuilt=rebuilt, probe_ms=probe_ms)


def _production(rows: int, bytes_per_row: float = 100.0) -> ProductionProfile:
    return ProductionProfile(tables={"shop_order": TableFigures(rows=rows, total_bytes=int(rows * bytes_per_row))})


def _estimate(statement: StatementTrace, profile: ProductionProfile | None) -> Estimate:
    return estimate_mysql_statement(statement, classify_mysql_statement(statement, set()), profile=profile, clone=CLONE)


COPY = _statement("ALTER TABLE `shop_order` MODIFY `total` bigint NOT NULL", 804.0, _ddl("COPY", rebuilt=True, lock="SHARED"))
INSTANT = _statement("ALTER TABLE `shop_order` ADD COLUMN `coupon` varchar(20) NULL", 1.2, _ddl("INSTANT", rebuilt=False))
INDEX = _statement("CREATE INDEX `order_total_idx` ON `shop_order` (`total`)", 204.0, _ddl("NOCOPY", rebuilt=False))


def test_a_copy_algorithm_alter_at_ten_times_the_rows_is_estimated_ten_times_its_growing_part():
    estimate = _estimate(COPY, _production(10 * CLONE_ROWS))

    assert (estimate.work_class, estimate.law, estimate.rows_scale) == ("rewrite", "linear", 10.0)
    # The 4 ms the same ALTER took on a one-row copy does not grow; the other 800 ms do.
    assert estimate.estimated_ms == pytest.approx(4.0 + 800.0 * 10)
    assert estimate.low_ms is not None and estimate.high_ms is not None
    assert estimate.low_ms < estimate.estimated_ms < estimate.high_ms


def test_a_copy_estimate_grows_in_proportion_with_the_production_rows():
    at_ten = _estimate(COPY, _production(10 * CLONE_ROWS)).estimated_ms
    at_hundred = _estimate(COPY, _production(100 * CLONE_ROWS)).estimated_ms

    assert at_ten is not None and at_hundred is not None
    assert (at_hundred - 4.0) / (at_ten - 4.0) == pytest.approx(10.0)


def test_an_instant_alter_stays_at_its_measured_time_at_any_size():
    for rows in (CLONE_ROWS, 10 * CLONE_ROWS, 1000 * CLONE_ROWS):
        estimate = _estimate(INSTANT, _production(rows))
        assert (estimate.work_class, estimate.law, estimate.estimated_ms) == ("catalog_only", "constant", 1.2)
        assert "ALGORITHM=INSTANT" in estimate.basis


def test_an_index_built_in_place_grows_as_n_log_n():
    estimate = _estimate(INDEX, _production(10 * CLONE_ROWS))

    growth = 10 * math.log2(10 * CLONE_ROWS + 1) / math.log2(CLONE_ROWS + 1)
    assert (estimate.work_class, estimate.law) == ("index_build", "n_log_n")
    assert estimate.estimated_ms == pytest.approx(4.0 + 200.0 * growth, rel=1e-4)


def test_wider_production_rows_raise_a_rebuild_by_the_bytes_share_only():
    # The clone's rows are 100 bytes each; production's 300: half the per-row time follows bytes.
    estimate = _estimate(COPY, _production(10 * CLONE_ROWS, bytes_per_row=300.0))

    assert estimate.width_scale == pytest.approx(2.0)
    assert estimate.estimated_ms == pytest.approx(4.0 + 800.0 * 10 * 2.0)


def test_the_range_widens_the_further_production_is_from_the_clone():
    near = _estimate(COPY, _production(2 * CLONE_ROWS)).range_factor
    far = _estimate(COPY, _production(100 * CLONE_ROWS)).range_factor

    assert near is not None and far is not None
    assert 1.5 < near < far


def test_without_table_stats_a_rebuild_is_measured_but_not_estimated():
    for profile, reason in (
        (None, "no table stats uploaded"),
        (ProductionProfile(tables={"other": TableFigures(1, 1)}), "shop_order"),
    ):
        estimate = _estimate(COPY, profile)
        assert estimate.measured_ms == 804.0 and estimate.estimated_ms is None
        assert estimate.basis.startswith("not estimated") and reason in estimate.basis


def test_an_update_of_existing_rows_is_a_linear_backfill():
    update = _statement("UPDATE `shop_order` SET `coupon` = 'none' WHERE `coupon` IS NULL", 300.0)

    estimate = _estimate(update, _production(10 * CLONE_ROWS))

    assert (estimate.work_class, estimate.law, estimate.estimated_ms) == ("backfill", "linear", pytest.approx(3000.0))


def test_work_on_a_table_the_change_created_is_catalog_only():
    create = _statement("CREATE TABLE `shop_coupon` (`id` bigint AUTO_INCREMENT NOT NULL PRIMARY KEY)", 9.0)
    foreign_key = _statement(
        "ALTER TABLE `shop_coupon` ADD CONSTRAINT `fk` FOREIGN KEY (`order_id`) REFERENCES `shop_order` (`id`)",
        30.0,
        OnlineDdl(table="shop_coupon", algorithm="COPY", lock="SHARED", rebuilt=True),
        index=1,
    )

    analysed = analyse_mysql_statements([create, foreign_key], profile=_production(10 * CLONE_ROWS), clone=CLONE)

    assert [s.work_class for s in analysed] == ["catalog_only", "catalog_only"]
    assert analysed[1].estimate is not None and analysed[1].estimate.estimated_ms == 30.0


def test_the_model_says_it_is_fitted_per_statement_and_names_the_clones_sizes():
    model = mysql_model_summary(CLONE, estimated=True)

    assert not model.calibrated and model.estimated and "one-row copy" in model.description
    assert [(t.table, t.rows, t.bytes) for t in model.seeded_tables] == [("shop_order", CLONE_ROWS, 10_000_000)]


def test_a_hand_written_update_with_a_bare_table_name_is_a_linear_backfill_too():
    update = _statement("UPDATE LOW_PRIORITY shop_order SET coupon = 'none'", 300.0)

    estimate = _estimate(update, _production(10 * CLONE_ROWS))

    assert (estimate.work_class, estimate.law, estimate.estimated_ms) == ("backfill", "linear", pytest.approx(3000.0))
