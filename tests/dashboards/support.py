"""What the dashboard tests share: configurations for the local Grafana, and a warehouse to read.

`config_for` points a configuration's grafana: section at a local Grafana. `seed` fills a
PostgreSQL warehouse the way pipewarden fills one, for the dashboards' SQL to read: two syncs
of `orders` (with the shop's checks, so rows are held) and of `orders_copy` (the same source
without checks), a repair of `orders` after three rows were spoiled in the warehouse, a clean
dry run of `orders_copy`, ten days of hourly history for `events` ending in a volume spike,
and check runs: one after the first syncs (dated when `orders` was past its error threshold and
`orders_copy` past its warning: incidents open), one after the second (dated when both were
fresh: the incidents close), and the last one now over all three: `orders` is past its error
threshold, `orders_copy` past its warning, `events` has an anomaly. Before the last, a column
appears in the source and a third sync of `orders_copy` records the schema change. The owners
are `#shop-data` for `orders`, `#copies-data` (a channel Slack does not have) for `orders_copy`
and none for `events`. The first check run's alerts are delivered to a local Slack: those of
`orders` are sent, those of `orders_copy` fail for good; the later ones wait in the outbox (or
are sent by the flow run of the last sync, which delivers after its work). That sync runs in a
Prefect flow run, as a deployment runs it.
"""

import math
import uuid
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import yaml

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.checks.monitoring.run import run_checks
from pipewarden.config.load import load_config, parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.flows.sync import sync_flow
from pipewarden.measurements.sync_metrics import NEWEST_CURSOR
from pipewarden.reconcile.run import ReconcileOptions, ReconcileReport, reconcile_table
from pipewarden.records.metrics import CheckResult, MetricPoint, write_metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.sync_runs import SyncRun, last_runs, start_run
from pipewarden.sync.run import SyncOptions, sync_table
from tests.checks.validation.support import ORDERS
from tests.fixtures.grafana import TOKEN
from tests.fixtures.slack import TOKEN as SLACK_TOKEN

PASSWORD = "reader-password-that-must-never-show-91c2"
#: The owner of `orders_copy`: a channel the local Slack does not have.
GONE_CHANNEL = "#copies-data"
READER_URL = (
    f"postgresql+psycopg://pipewarden_grafana:{PASSWORD}@db.internal:5433/warehouse"
    "?sslmode=verify-full"
)


def config_for(url: str, **grafana: Any) -> PipewardenConfig:
    """A configuration whose grafana: section points at `url`; `grafana` overrides its keys."""
    section = {"url": url, "token": TOKEN, "warehouse_url": READER_URL, **grafana}
    return parse_config(
        {
            "warehouse": {"url": "sqlite:///unused.sqlite"},
            "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
            "tables": {"orders": {"source": "shop", "primary_key": "id", "cursor": "updated_at"}},
            "grafana": {k: v for k, v in section.items() if v is not None},
        },
        Path("t.yaml"),
    )


@dataclass
class Seeded:
    """What went into the warehouse, as pipewarden reported it."""

    url: str
    now: datetime
    syncs: dict[str, list[SyncRun]]
    reconciles: dict[str, ReconcileReport]
    #: The last check run's results.
    results: list[CheckResult]
    events_history: list[MetricPoint]
    #: Every check run's results, oldest first (the last is `results`).
    check_runs: list[list[CheckResult]] = field(default_factory=list)
    #: Runs killed mid-way (left "running"), which the table's next sync marked abandoned.
    abandoned: list[SyncRun] = field(default_factory=list)


def _order(order_id: int, at: datetime, **changes: Any) -> dict[str, Any]:
    naive = at.replace(tzinfo=None)
    row = {
        "order_id": order_id,
        "customer_id": 100 + order_id,
        "status": "paid",
        "currency": "EUR",
        "amount": Decimal("19.99"),
        "created_at": naive,
        "updated_at": naive,
    }
    return row | changes


def _config_file(source: str, warehouse: str, slack_url: str, folder: Path) -> Path:
    """The configuration as a file, for the flow run; `orders_copy`'s owner is a channel the
    local Slack does not have, so its alerts fail for good."""
    orders = {"source": "shop", "primary_key": "order_id", "cursor": "updated_at"}
    settings = {
        "warehouse": {"url": warehouse},
        "sources": {"shop": {"url": source}},
        "tables": {
            "orders": orders
            | {
                "schema": "pipewarden.checks.schemas.shop:Orders",
                "freshness": {"warn_after": "30m", "error_after": "2h"},
                "owner": "#shop-data",
            },
            "orders_copy": orders
            | {
                "source_table": "orders",
                "freshness": {"warn_after": "1h", "error_after": "4h"},
                "owner": GONE_CHANNEL,
            },
            "events": {"source": "shop", "primary_key": "id", "cursor": "updated_at"},
        },
        "slack": {
            "token": SLACK_TOKEN,
            "default_channel": "#alerts",
            "base_url": slack_url,
            "retries": 0,
        },
    }
    path = folder / "dashboards-test.yaml"
    path.write_text(yaml.safe_dump(settings), encoding="utf-8")
    return path


def _recorded_run(warehouse: str, table: str) -> SyncRun:
    """The table's newest sync run as the warehouse holds it."""
    row = last_runs(cached_engine(warehouse), table, 1)[0]._mapping
    names = [f.name for f in fields(SyncRun) if f.name not in ("schema_changes",)]
    return SyncRun(**{name: row[name] for name in names})


def _events_history(end: datetime, days: int = 10) -> list[MetricPoint]:
    """Hourly volume with a daily cycle ending in a spike, latency and freshness around it."""
    rng = np.random.default_rng(1)
    points = []
    n = days * 24
    for i in range(n):
        at = end - timedelta(hours=n - 1 - i)
        rows = float(rng.poisson(200 + 150 * math.sin(2 * math.pi * at.hour / 24)))
        points += [
            MetricPoint(at, "events", "rows_by_cursor_hour", 4000.0 if i == n - 1 else rows),
            MetricPoint(at, "events", "latency_p95_seconds", float(rng.normal(600, 40))),
            MetricPoint(at, "events", "freshness_seconds", float(rng.normal(120, 10))),
        ]
    return points


def seed(warehouse: str, source: str, slack_url: str, folder: Path) -> Seeded:
    """Fill the warehouse (Slack at `slack_url`; a Prefect server must be running)."""
    now = datetime.now(UTC).replace(microsecond=0)
    path = _config_file(source, warehouse, slack_url, folder)
    config = load_config(path)
    engine = sa.create_engine(source)
    ORDERS.create(engine)
    early, late = now - timedelta(hours=5), now - timedelta(minutes=150)
    first = [_order(i, early + timedelta(seconds=i)) for i in range(1, 7)]
    first += [_order(7, early, currency="XYZ"), _order(8, early, amount=Decimal("-5.00"))]
    second = [_order(i, late + timedelta(seconds=i)) for i in range(9, 12)]
    second += [_order(12, late, currency="XYZ")]
    options = SyncOptions()
    syncs: dict[str, list[SyncRun]] = {"orders": [], "orders_copy": []}
    killed = SyncRun(str(uuid.uuid4()), "orders_copy", late - timedelta(minutes=1))
    check_runs = []
    # Dated when the newest rows of each round were 125 and 10 minutes old: first both orders
    # tables fail their SLA, then both pass.
    for rows, checked in (
        (first, early + timedelta(minutes=125)),
        (second, late + timedelta(minutes=10)),
    ):
        with engine.begin() as conn:
            conn.execute(ORDERS.insert(), rows)
        for name in syncs:
            syncs[name].append(sync_table(config, name, options))
        if rows is first:  # a run of orders_copy killed (SIGKILL) mid-way: left "running"
            start_run(cached_engine(warehouse), killed)
        check_runs.append(run_checks(config, ["orders", "orders_copy"], now=checked))
        if rows is first:  # the first incidents reach Slack: sent, or failed for good
            deliver_pending(config)

    wh = cached_engine(warehouse)
    with wh.begin() as conn:
        conn.execute(sa.text("DELETE FROM orders WHERE order_id = 2"))
        conn.execute(sa.text("UPDATE orders SET status = 'shipped' WHERE order_id = 3"))
        columns = ", ".join(c.name for c in ORDERS.columns if c.name != "order_id")
        copy = f"SELECT 99, {columns} FROM orders WHERE order_id = 1"
        conn.execute(sa.text(f"INSERT INTO orders (order_id, {columns}) {copy}"))
    reconciles = {
        "orders": reconcile_table(config, "orders", ReconcileOptions(repair=True)),
        "orders_copy": reconcile_table(config, "orders_copy"),
    }

    ensure_tables(wh)
    # The spike and the newest cursor share an instant, so they share a cursor hour whatever
    # the minute: the spike is in the hour in progress. (Five minutes apart, the spike fell in
    # an hour after the one in progress for five minutes of every hour, and went unseen.)
    newest = now - timedelta(minutes=10)
    history = _events_history(newest)
    with wh.begin() as conn:
        write_metrics(
            conn, [*history, MetricPoint(newest, "events", NEWEST_CURSOR, newest.timestamp())]
        )
    with engine.begin() as conn:  # a column appears in the source
        conn.exec_driver_sql("ALTER TABLE orders ADD COLUMN note TEXT")
    # As a deployment runs it: in a Prefect flow run, which the sync run records.
    sync_flow(tables=["orders_copy"], config_path=str(path))
    syncs["orders_copy"].append(_recorded_run(warehouse, "orders_copy"))
    engine.dispose()
    results = run_checks(config)
    killed.status = "abandoned"
    return Seeded(
        warehouse,
        now,
        syncs,
        reconciles,
        results,
        history,
        abandoned=[killed],
        check_runs=[*check_runs, results],
    )
