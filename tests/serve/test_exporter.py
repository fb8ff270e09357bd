"""The exporter scraped over real HTTP, on PostgreSQL and SQLite warehouses filled by real runs."""

import socket
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import alerts
from pipewarden.records.incidents import incidents
from pipewarden.records.reconcile_runs import ReconcileRun, finish_run, start_run
from pipewarden.records.tables import sync_runs
from pipewarden.serve.exporter import SCRAPE_TIMEOUTS, TableCollector, exposition
from tests.serve.support import exporter, filled_shop, free_port, sample, scrape

LABELS = {"table": "orders", "source": "shop", "owner": "crm-team"}


def test_each_figure_is_what_the_runs_recorded(shop):
    config = filled_shop(shop)
    engine = sa.create_engine(shop.warehouse_url)
    with engine.connect() as conn:
        [run] = conn.execute(sa.select(sync_runs)).mappings()
        opened = list(conn.execute(sa.select(incidents)).mappings())
        waiting = list(conn.execute(sa.select(alerts.c.created_at)).scalars())
    engine.dispose()
    before = datetime.now(UTC)

    with exporter(config) as url:
        got = scrape(url)

    after = datetime.now(UTC)
    assert sample(got, "pipewarden_up") == 1
    freshness = sample(got, "pipewarden_table_freshness_seconds", **LABELS)
    assert 90 * 60 - 5 < freshness < 95 * 60  # the newest row loaded is 90 minutes old
    assert sample(got, "pipewarden_table_sla_status", status="warn", **LABELS) == 1
    assert sample(got, "pipewarden_table_sla_status", status="ok", **LABELS) == 0
    finished = run["finished_at"].replace(tzinfo=UTC)
    staleness = sample(got, "pipewarden_table_staleness_seconds", **LABELS)
    assert (before - finished).total_seconds() <= staleness <= (after - finished).total_seconds()
    assert sample(got, "pipewarden_table_last_sync_status", status="success", **LABELS) == 1
    p95 = sample(got, "pipewarden_table_sync_latency_p95_seconds", **LABELS)
    assert p95 == pytest.approx(run["latency_p95_seconds"])
    assert sample(got, "pipewarden_table_rows_quarantined", **LABELS) == run["rows_quarantined"]
    # the freshness incident and the held rows' (check quarantine), both warn and open
    assert sorted(i["check"] for i in opened if i["closed_at"] is None) == [
        "freshness",
        "quarantine",
    ]
    assert sample(got, "pipewarden_table_open_incidents", severity="warn", **LABELS) == 2
    assert sample(got, "pipewarden_table_open_incidents", severity="error", **LABELS) == 0
    assert sample(got, "pipewarden_table_outbox_backlog", **LABELS) == len(waiting) >= 1
    oldest = sample(got, "pipewarden_table_outbox_oldest_waiting_seconds", **LABELS)
    assert oldest <= (after - min(waiting).replace(tzinfo=UTC)).total_seconds()
    assert not [name for name, _ in got if name.endswith("differences_remaining")]  # none run


def test_a_later_sync_is_seen_by_the_next_scrape(shop):
    config = filled_shop(shop)

    with exporter(config) as url:
        before = scrape(url)
        shop.add(3, minutes_ago=1)
        assert shop.sync(config).status == "success"
        after = scrape(url)

    engine = sa.create_engine(shop.warehouse_url)
    with engine.connect() as conn:
        latest = conn.execute(
            sa.select(sync_runs).order_by(sync_runs.c.started_at.desc()).limit(1)
        ).one()
    engine.dispose()
    p95 = sample(after, "pipewarden_table_sync_latency_p95_seconds", **LABELS)
    assert p95 == pytest.approx(latest.latency_p95_seconds)
    staleness = sample(after, "pipewarden_table_staleness_seconds", **LABELS)
    assert staleness < sample(before, "pipewarden_table_staleness_seconds", **LABELS)
    assert sample(after, "pipewarden_table_freshness_seconds", **LABELS) < 5 * 60


def test_a_scrape_reads_the_warehouse_in_four_queries_and_the_cache_not_at_all(shop):
    config = filled_shop(shop)
    engine = cached_engine(config.warehouse.url, SCRAPE_TIMEOUTS)  # the exporter's own
    queries: list[str] = []

    def count(conn, cursor, statement, *args):  # type: ignore[no-untyped-def]
        queries.append(statement)

    collector = TableCollector(config, cache_seconds=0)
    collector.snapshot()  # connects first: a new connection's set-up statements are not a scrape
    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        with exporter(config, cache_seconds=0) as url:
            scrape(url)
            assert len(queries) == 4
            scrape(url)
            assert len(queries) == 8
        with exporter(config, cache_seconds=3600) as url:
            first = scrape(url)
            assert len(queries) == 12
            assert scrape(url) == first  # within the cache: the same read, no query
            assert len(queries) == 12
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)


@pytest.fixture
def silent_server():
    """A TCP port that accepts connections and never says a word (a hung warehouse)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        yield listener.getsockname()[1]


@pytest.mark.parametrize("where", ["refused", "silent"])
def test_an_unreachable_warehouse_is_up_0_not_a_hung_scrape(where, silent_server, sqlite_url):
    port = silent_server if where == "silent" else free_port()
    config = parse_config(
        {
            "warehouse": {"url": f"postgresql+psycopg://pw@127.0.0.1:{port}/wh"},
            "sources": {"shop": {"url": sqlite_url("shop")}},
            "tables": {"orders": {"source": "shop", "primary_key": "id", "cursor": "at"}},
        },
        Path("t.yaml"),
    )

    with exporter(config) as url:
        got = scrape(url)  # answers within the connect limit, well inside urlopen's 30 s

    assert sample(got, "pipewarden_up") == 0
    assert not [name for name, _ in got if name.startswith("pipewarden_table_")]


def test_the_served_text_is_the_exposition_of_the_collected_families(shop):
    """`render` writes table samples straight into text; it says what `collect` says, byte
    for byte, labels needing escapes included (an owner with a quote and a backslash)."""
    config = filled_shop(shop)
    orders = config.tables["orders"]
    config.tables["orders"] = orders.model_copy(update={"owner": 'crm "eu"\\ team'})
    collector = TableCollector(config, cache_seconds=3600)  # both read the same snapshot

    served = collector.render()

    assert served == exposition(collector.collect())
    assert b'owner="crm \\"eu\\"\\\\ team"' in served
    assert served.count(b"\npipewarden_table_freshness_seconds{") == 1


def test_differences_remaining_follow_the_latest_finished_reconciliation(shop):
    """The reader keeps each table's latest finished reconciliation between scrapes and reads
    only the runs started since: one still running is read again until it has finished."""
    config = filled_shop(shop)
    engine = sa.create_engine(shop.warehouse_url)
    now = datetime.now(UTC)
    earlier = ReconcileRun(str(uuid.uuid4()), "orders", now - timedelta(hours=2), missing=3)
    earlier.extra, earlier.changed = 1, 2  # a dry run: remaining is what it found
    start_run(engine, earlier)
    finish_run(engine, earlier, "success")
    later = ReconcileRun(str(uuid.uuid4()), "orders", now - timedelta(minutes=1), "repair")
    start_run(engine, later)
    remaining = "pipewarden_table_reconcile_differences_remaining"

    with exporter(config) as url:
        before = sample(scrape(url), remaining, **LABELS)
        still = sample(scrape(url), remaining, **LABELS)
        later.missing, later.repaired, later.remaining = 5, 4, 1
        finish_run(engine, later, "success")
        after = sample(scrape(url), remaining, **LABELS)
    engine.dispose()

    assert (before, still, after) == (6, 6, 1)


def test_a_port_already_taken_exits_2_naming_it(shop, tmp_path):
    """Another process on the port: exit 2 (pipewarden could not do its job) naming the address,
    not an OSError traceback with exit 1 (the data needs attention)."""
    from typer.testing import CliRunner

    from pipewarden.cli.main import app
    from tests.serve.support import config_file

    path = config_file(shop, tmp_path / "pipewarden.yaml")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        result = CliRunner().invoke(
            app, ["exporter", "--config", str(path), "--port", port], catch_exceptions=False
        )
    assert result.exit_code == 2
    assert f"127.0.0.1:{port}" in result.output and "Traceback" not in result.output
