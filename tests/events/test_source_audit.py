"""A stream reconciled against its source on PostgreSQL: exactly the dropped deliveries are
missed, events the source does not have are unexpected, and --repair backfills the missed."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx

from tests.events.support import (
    ENV,
    SHOP_SECRET,
    Receiver,
    orders_source,
    query,
    shopify_headers,
    stream_config,
    write_config,
)

DROPPED = {3, 11, 17}


def _paid(order_id: int, at: datetime) -> bytes:
    payload = {
        "id": f"evt-{order_id}",
        "type": "order.paid",
        "created_at": at.isoformat(),
        "order_id": order_id,
        "customer_id": order_id % 5,
        "total": order_id * 1.5,
    }
    return json.dumps(payload).encode()


def _reconcile(config_path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pipewarden.cli.main", "reconcile", "shop", "--json"]
        + ["--config", str(config_path), *args],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_stream_reconciliation_finds_exactly_the_dropped_deliveries(postgres, tmp_path):
    warehouse, source = postgres.new("wh"), postgres.new("shop")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    orders_source(source, start)
    config_path = write_config(tmp_path, stream_config(warehouse, source))
    receiver = Receiver(config_path).start()
    try:
        with httpx.Client(timeout=30) as client:
            sent = [i for i in range(1, 31) if i not in DROPPED]
            deliveries = [(i, start + timedelta(minutes=i)) for i in sent + [5, 8]]  # 2 twice
            # A pending order and one the shop never had:
            deliveries += [(i, start + timedelta(minutes=30)) for i in (40, 999)]
            for i, at in deliveries:
                body = _paid(i, at)
                headers = shopify_headers(SHOP_SECRET, body)
                answer = client.post(f"{receiver.url}/events/shop", content=body, headers=headers)
                assert answer.status_code == 200
    finally:
        receiver.stop()
    since = (start - timedelta(minutes=5)).isoformat()
    dry = _reconcile(config_path, "--since", since)
    assert dry.returncode == 1, dry.stderr
    found = json.loads(dry.stdout)
    assert sorted(int(k) for k in found["missed"]) == sorted(DROPPED)
    assert sorted(int(k) for k in found["unexpected"]) == [40, 999]
    assert found["source_keys"] == 30 and found["backfilled"] == []

    repaired = _reconcile(config_path, "--since", since, "--repair")
    assert repaired.returncode == 1  # the unexpected events remain: reported, never removed
    assert sorted(int(k) for k in json.loads(repaired.stdout)["backfilled"]) == sorted(DROPPED)
    again = json.loads(_reconcile(config_path, "--since", since, "--repair").stdout)
    assert again["missed"] == [] and again["backfilled"] == []

    landed = query(
        warehouse,
        "SELECT source_key, delivery, event_id, event_time FROM shop_events "
        "WHERE delivery = 'backfill' ORDER BY source_key",
    )
    per_key = query(warehouse, "SELECT source_key, count(*) FROM shop_events GROUP BY source_key")
    runs = query(
        warehouse,
        "SELECT action, missing, extra, repaired FROM pipewarden_reconcile_runs "
        "WHERE table_name = 'shop' ORDER BY started_at",
    )
    alerts = query(warehouse, "SELECT kind FROM pipewarden_alerts WHERE table_name = 'shop'")
    assert {int(r[0]) for r in landed} == DROPPED
    assert {r[2] for r in landed} == {f"backfill:{k}" for k in DROPPED}
    assert all(r[3] == start + timedelta(minutes=int(r[0])) for r in landed)
    assert {int(k): n for k, n in per_key} == {i: 1 for i in [*range(1, 31), 40, 999]}
    assert [tuple(r) for r in runs] == [
        ("dry-run", 3, 2, 0),
        ("repair", 3, 2, 3),
        ("repair", 0, 2, 0),
    ]
    assert alerts[0][0] == "opened"
