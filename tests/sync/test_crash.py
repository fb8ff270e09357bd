"""A sync killed between batches and run again: nothing skipped, nothing doubled."""

import json
import signal
import subprocess
import sys
import textwrap
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from unittest.mock import ANY

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import cached_engine
from pipewarden.sync.run import sync_table
from tests.sync.support import (
    make_config,
    naive_if_needed,
    normalized,
    orders_table,
    rows_of,
    sync_runs_of,
    utc,
)

ROOT = Path(__file__).resolve().parents[2]
KILL_AFTER_TWO_BATCHES = textwrap.dedent(
    """
    import json, os, signal, sys
    from pathlib import Path
    from pipewarden.config.load import parse_config
    from pipewarden.sync.run import SyncOptions, sync_table

    config = parse_config(json.loads(sys.argv[1]), Path("test.yaml"))

    def die(run):
        if run.batches == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    sync_table(config, "orders", SyncOptions(on_batch=die))
    """
)


@pytest.mark.parametrize(
    "source_kind,warehouse_kind",
    [("postgresql", "postgresql"), ("mariadb", "sqlite"), ("mariadb", "postgresql")],
)
def test_killed_between_batches_then_rerun_matches_the_source(
    make_url, source_kind, warehouse_kind
):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    source = cached_engine(source_url)
    orders = orders_table()
    orders.create(source)
    t0 = utc(2026, 3, 1)
    with source.begin() as conn:
        conn.execute(
            orders.insert(),
            [
                {
                    "order_id": i,
                    "status": "paid",
                    "amount": Decimal(i) / 100,
                    "updated_at": naive_if_needed(source, t0 + timedelta(seconds=i // 7)),
                }
                for i in range(1, 1001)
            ],
        )
    raw = {
        "warehouse": {"url": warehouse_url},
        "sources": {"shop": {"url": source_url}},
        "tables": {
            "orders": {
                "source": "shop",
                "primary_key": ["order_id"],
                "cursor": "updated_at",
                "batch_size": 150,
            }
        },
    }
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AFTER_TWO_BATCHES, json.dumps(raw)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    warehouse = cached_engine(warehouse_url)
    with warehouse.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM orders")).scalar() == 300
    assert [tuple(r) for r in sync_runs_of(warehouse)] == [(ANY, "running", None)]
    # Another change lands while the sync is down.
    with source.begin() as conn:
        conn.execute(
            orders.update()
            .where(orders.c.order_id == 10)
            .values(status="refunded", updated_at=naive_if_needed(source, t0 + timedelta(days=1)))
        )
    rerun = sync_table(make_config(source_url, warehouse_url, batch_size=150), "orders")
    assert rerun.status == "success"
    # The killed run is no longer "running" for ever.
    (_, killed_status, found_by), (_, status, _) = sync_runs_of(warehouse)
    assert (killed_status, status) == ("abandoned", "success")
    assert found_by is not None and rerun.run_id in found_by
    assert normalized(rows_of(warehouse)) == normalized(rows_of(source))
    with warehouse.connect() as conn:
        assert (
            conn.execute(
                sa.text(
                    "SELECT count(*) FROM (SELECT order_id FROM orders GROUP BY order_id "
                    "HAVING count(*) > 1) d"
                )
            ).scalar()
            == 0
        )
