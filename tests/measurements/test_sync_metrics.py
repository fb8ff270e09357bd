"""Metrics written by a real sync run, on PostgreSQL and SQLite warehouses."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR, record_sync_metrics
from pipewarden.records.column_samples import read_samples
from pipewarden.records.metrics import history, metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.sync_runs import SyncRun
from tests.fixtures.shop import Shop


def _series(
    engine: sa.Engine, metric: str, labels: dict[str, str] | None = None
) -> tuple[list[datetime], list[float]]:
    with engine.connect() as conn:
        return history(conn, "orders", metric, labels=labels)


def _latest(engine: sa.Engine, metric: str, **labels: str) -> float:
    values = _series(engine, metric, labels or None)[1]
    assert values, f"no {metric} points"
    return values[-1]


def _labels_of(engine: sa.Engine, metric: str) -> list[str]:
    with engine.connect() as conn:
        q = sa.select(metrics.c.labels).where(metrics.c.metric == metric).order_by(metrics.c.id)
        return list(conn.execute(q).scalars())


def test_run_metrics_match_the_run(shop: Shop) -> None:
    newest = shop.add(20, minutes_ago=50)
    shop.add(8, minutes_ago=90)
    config = shop.config()
    run = shop.sync(config)
    engine = cached_engine(config.warehouse.url)

    assert _labels_of(engine, "rows_read") == ['{"load": "full"}']  # written once, by the sync
    assert _latest(engine, "rows_read", load="full") == 28
    assert _latest(engine, "rows_loaded", load="full") == 28
    assert _latest(engine, "rows_quarantined", load="full") == 0
    assert _latest(engine, "latency_p95_seconds", load="full") == run.latency_p95_seconds
    assert run.finished_at is not None
    expected_age = (run.finished_at - newest).total_seconds()
    assert abs(_latest(engine, "freshness_seconds", load="full") - expected_age) < 0.01
    assert _latest(engine, NEWEST_CURSOR, load="full") == newest.timestamp()
    # One row in four has no status; every amount is one of seven values.
    assert _latest(engine, "null_rate", column="status") == 0.25
    assert _latest(engine, "distinct_count", column="amount") == 7
    assert _latest(engine, "min", column="amount") == 10
    assert _latest(engine, "max", column="amount") == 16
    assert sum(_series(engine, "rows_by_cursor_hour")[1]) == 28


def test_a_delta_is_unlabelled_and_freshness_ages_when_nothing_new_arrives(shop: Shop) -> None:
    shop.add(5, minutes_ago=40)
    config = shop.config()
    engine = cached_engine(config.warehouse.url)
    shop.sync(config)
    shop.sync(config)  # the source has nothing new

    assert _labels_of(engine, "rows_loaded") == ['{"load": "full"}', "{}"]
    assert _latest(engine, "rows_loaded") == 0
    ages = _series(engine, "freshness_seconds")[1]
    assert len(ages) == 2 and ages[1] > ages[0] >= 40 * 60
    newest = _series(engine, NEWEST_CURSOR)[1]
    assert newest[0] == newest[1]


def test_newer_rows_move_freshness_forward(shop: Shop) -> None:
    shop.add(5, minutes_ago=120)
    config = shop.config()
    engine = cached_engine(config.warehouse.url)
    shop.sync(config)
    stamp = shop.add(3, minutes_ago=2)
    shop.sync(config)

    assert _latest(engine, "rows_loaded") == 3
    assert _latest(engine, NEWEST_CURSOR) == stamp.timestamp()
    assert 120 <= _latest(engine, "freshness_seconds") < 60 * 60


def test_measured_at_is_the_end_of_the_run(shop: Shop) -> None:
    shop.add(2, minutes_ago=5)
    config = shop.config()
    engine = cached_engine(config.warehouse.url)
    run = shop.sync(config)
    times, _ = _series(engine, "rows_read", {"load": "full"})
    assert times == [run.finished_at]
    assert abs(datetime.now(UTC) - times[0]) < timedelta(minutes=5)


def test_without_profiles_the_watermark_gives_freshness(shop: Shop) -> None:
    config = shop.config()
    engine = cached_engine(config.warehouse.url)
    ensure_tables(engine)
    finished = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    run = SyncRun("r1", "orders", started_at=finished - timedelta(seconds=3))
    run.status, run.finished_at, run.rows_read, run.rows_loaded = "success", finished, 4, 4
    run.old_watermark = finished - timedelta(hours=2)
    run.new_watermark = (finished - timedelta(minutes=10)).replace(tzinfo=None)  # naive is UTC
    written = record_sync_metrics(engine, run, config.table("orders"), None)

    assert written == 7  # rows x4, sync_succeeded, freshness, newest cursor
    assert _labels_of(engine, "rows_loaded") == ["{}"]
    assert _latest(engine, "freshness_seconds") == 600
    assert _latest(engine, NEWEST_CURSOR) == (finished - timedelta(minutes=10)).timestamp()
    assert _labels_of(engine, "null_rate") == []
    # latency is unknown for this run: no point rather than a made-up one
    assert _series(engine, "latency_p95_seconds") == ([], [])


def test_samples_are_kept_per_delta_and_the_lookback_counts_once(shop: Shop) -> None:
    shop.add(6, minutes_ago=40)
    config = shop.config(lookback="1h")
    engine = cached_engine(config.warehouse.url)
    shop.sync(config)  # the first load: a full sample, and its hours labelled full
    shop.add(3, minutes_ago=5)
    shop.sync(config)  # re-reads the first six rows through the lookback
    shop.sync(config)  # nothing new: leaves no sample

    with engine.connect() as conn:
        full = read_samples(conn, ["orders"], load="full")["orders"]
        delta = read_samples(conn, ["orders"])["orders"]
    assert {s.run_id for s in full} != {s.run_id for s in delta}
    assert len({s.run_id for s in delta}) == 1
    assert {s.rows for s in delta} == {9}  # the profile saw what the delta read
    hours = _series(engine, "rows_by_cursor_hour", {})[1]
    assert sum(hours) == 3  # but the hour counts only the rows after the old watermark
