"""The receiver over real HTTP on a real warehouse: signatures, idempotency, latest state,
bad payloads, health."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa

from tests.events.support import (
    ENV,
    PAY_OLD_SECRET,
    PAY_SECRET,
    SHOP_SECRET,
    Receiver,
    body_of,
    query,
    shopify_headers,
    stream_config,
    stripe_headers,
    write_config,
)


def _send_shop(url: str, payload: Any, secret: str = SHOP_SECRET, **headers: str) -> httpx.Response:
    body = body_of(payload)
    signed = {**shopify_headers(secret, body), "Content-Type": "application/json", **headers}
    return httpx.post(f"{url}/events/shop", content=body, headers=signed, timeout=30)


def _order(event_id: str, customer: int, at: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "type": "cart.updated",
        "created_at": at.isoformat(),
        "customer_id": customer,
        "total": 10.5,
        **extra,
    }


def _rows(url: str, sql: str) -> list[Any]:
    return query(url, sql)


def test_signatures(warehouse_url, receivers):
    receiver = receivers(stream_config(warehouse_url))
    now = datetime.now(UTC)
    ok = _send_shop(receiver.url, _order("e1", 1, now))
    assert ok.status_code == 200, ok.text
    assert ok.json()["status"] == "stored"
    tampered = body_of(_order("e2", 1, now))
    bad = httpx.post(
        f"{receiver.url}/events/shop",
        content=tampered,
        headers=shopify_headers(SHOP_SECRET, tampered.replace(b"e2", b"e3")),
    )
    assert bad.status_code == 401 and "does not match" in bad.json()["reason"]
    wrong_key = _send_shop(receiver.url, _order("e4", 1, now), secret="not-the-secret")
    assert wrong_key.status_code == 401
    missing = httpx.post(f"{receiver.url}/events/shop", content=body_of(_order("e5", 1, now)))
    assert missing.status_code == 401 and "missing" in missing.json()["reason"]

    def pay(secret: str, at: float | None = None, event_id: str = "ch_1") -> httpx.Response:
        body = body_of({"id": event_id, "type": "charge.succeeded", "created_at": time.time()})
        return httpx.post(
            f"{receiver.url}/events/pay", content=body, headers=stripe_headers(secret, body, at)
        )

    assert pay(PAY_SECRET, event_id="ch_new").status_code == 200
    assert pay(PAY_OLD_SECRET, event_id="ch_old").status_code == 200  # rotation: both valid
    expired = pay(PAY_SECRET, at=time.time() - 600, event_id="ch_late")
    assert expired.status_code == 401 and "tolerance" in expired.json()["reason"]
    assert pay("whsec_someone_else", event_id="ch_x").status_code == 401
    stored = _rows(warehouse_url, "SELECT event_id FROM pay_events ORDER BY event_id")
    assert [r[0] for r in stored] == ["ch_new", "ch_old"]
    stored = _rows(warehouse_url, "SELECT event_id FROM shop_events")
    assert [r[0] for r in stored] == ["e1"]
    log = receiver.log()
    for secret in (SHOP_SECRET, PAY_SECRET, PAY_OLD_SECRET):
        assert secret not in log


def test_idempotent_under_concurrent_redelivery(warehouse_url, receivers):
    receiver = receivers(stream_config(warehouse_url))
    now = datetime.now(UTC)
    events = [_order(f"ev-{i}", i % 7, now + timedelta(seconds=i)) for i in range(40)]
    deliveries = [e for e in events for _ in range(5)]  # every event delivered five times at once
    with ThreadPoolExecutor(32) as pool:
        answers = list(pool.map(lambda e: _send_shop(receiver.url, e), deliveries))
    assert all(a.status_code == 200 for a in answers), [
        a.text for a in answers if a.status_code != 200
    ]
    statuses = [a.json()["status"] for a in answers]
    assert statuses.count("stored") == 40 and statuses.count("duplicate") == 160
    rows = _rows(warehouse_url, "SELECT event_id, count(*) FROM shop_events GROUP BY event_id")
    assert sorted(r[0] for r in rows) == sorted(e["id"] for e in events)
    assert {r[1] for r in rows} == {1}


def test_out_of_order_events_leave_latest_state_right(warehouse_url, receivers):
    receiver = receivers(stream_config(warehouse_url))
    base = datetime(2026, 12, 1, 12, tzinfo=UTC)
    # Customer 1's cart at 12:00, 12:05, 12:10, delivered newest first; customer 2's oldest
    # arrives last; a tie on time is decided by the event id.
    order = [
        _order("c1-3", 1, base + timedelta(minutes=10), total=30.0),
        _order("c1-1", 1, base, total=10.0),
        _order("c2-2", 2, base + timedelta(minutes=5), total=25.0),
        _order("c1-2", 1, base + timedelta(minutes=5), total=20.0),
        _order("c2-1", 2, base, total=15.0),
        _order("c3-b", 3, base, total=2.0),
        _order("c3-a", 3, base, total=1.0),
    ]
    for payload in order:
        assert _send_shop(receiver.url, payload).status_code == 200
    # The same again, concurrently: the winner does not depend on the batch it lands in.
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda p: _send_shop(receiver.url, {**p, "id": p["id"] + "-again"}), order))
    latest = {
        r[0]: (r[1], json.loads(r[2])["total"])
        for r in _rows(warehouse_url, "SELECT subject, event_id, payload FROM shop_latest")
    }
    assert latest["1"][1] == 30.0 and latest["1"][0].startswith("c1-3")
    assert latest["2"][1] == 25.0 and latest["2"][0].startswith("c2-2")
    assert latest["3"][0] == "c3-b-again"  # same time: the greatest id wins
    assert len(_rows(warehouse_url, "SELECT event_id FROM shop_events")) == 14


def test_bad_payloads_are_quarantined_with_reasons(warehouse_url, receivers):
    receiver = receivers(stream_config(warehouse_url))
    now = datetime.now(UTC)
    not_json = _send_shop(receiver.url, b'{"id": "x1", "type": ')
    assert not_json.status_code == 400 and "not JSON" in not_json.json()["reason"]
    unknown = _send_shop(receiver.url, _order("x2", 1, now, type="order.shipped"))
    assert unknown.status_code == 422 and "unknown event type" in unknown.json()["reason"]
    negative = _send_shop(receiver.url, _order("x3", 1, now, total=-5))
    assert negative.status_code == 422
    again = _send_shop(receiver.url, _order("x3", 1, now, total=-5))  # the shop retries it
    assert again.status_code == 422 and again.json()["reasons"] == negative.json()["reasons"]
    assert negative.json()["reasons"][0]["column"] == "total"
    wrong_kind = _send_shop(receiver.url, _order("x4", 1, now, customer_id="abc"))
    assert wrong_kind.status_code == 422
    assert wrong_kind.json()["reasons"][0]["check"] == "type(integer)"
    bad_time = _send_shop(receiver.url, _order("x5", 1, now, created_at="yesterday"))
    assert bad_time.status_code == 422 and "not a time" in bad_time.json()["reason"]
    # An event from three days ahead would keep the stream "fresh" and its cart age negative.
    future = _send_shop(receiver.url, _order("x8", 1, now + timedelta(days=3)))
    assert future.status_code == 422
    assert "2d 23h after the event was received" in future.json()["reason"]
    assert "streams.shop.max_clock_skew is 5m" in future.json()["reason"]
    skewed = _send_shop(receiver.url, _order("x9", 1, now + timedelta(minutes=2)))
    assert skewed.status_code == 200  # a clock a little ahead is within max_clock_skew (5m)
    big = _send_shop(receiver.url, _order("x6", 1, now, note="n" * 5000))
    assert big.status_code == 413
    good = _send_shop(receiver.url, _order("x7", 1, now))
    assert good.status_code == 200
    held = _rows(
        warehouse_url,
        "SELECT primary_key, row_json, reasons, checks FROM pipewarden_quarantine "
        "WHERE table_name = 'shop' ORDER BY id",
    )
    checks = [r[3] for r in held]
    assert checks == [
        ",invalid_json,",
        ",event_type,",
        ",greater_than_or_equal_to,",
        ",type,",
        ",event_time,",
        ",event_time,",
    ]
    assert json.loads(held[0][1])["body"].startswith('{"id": "x1"')
    assert json.loads(held[1][0]) == {"event_id": "x2"}
    assert json.loads(held[2][2])[0]["column"] == "total"
    stored = _rows(warehouse_url, "SELECT event_id FROM shop_events ORDER BY event_id")
    assert [r[0] for r in stored] == ["x7", "x9"]
    shown = subprocess.run(
        [sys.executable, "-m", "pipewarden.cli.main", "quarantine", "show", "shop", "--json"]
        + ["--config", str(receiver.config_path)],
        env={**os.environ, **ENV},
        capture_output=True,
        text=True,
        timeout=120,
    )
    entries = [json.loads(line) for line in shown.stdout.splitlines()]
    assert len(entries) == 6, shown.stderr


def test_health_fails_while_the_warehouse_is_unreachable(postgres, receivers):
    url = postgres.new("wh")
    receiver = receivers(stream_config(url))
    assert httpx.get(f"{receiver.url}/health").status_code == 200
    admin = postgres.admin
    name = sa.make_url(url).database
    with admin.connect() as conn:  # the warehouse goes away under the receiver
        conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
        conn.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
            {"d": name},
        )
    try:
        answer = httpx.get(f"{receiver.url}/health", timeout=30)
        assert answer.status_code == 503 and answer.json()["ready"] is False
        assert httpx.get(f"{receiver.url}/health/live").status_code == 200
        sent = _send_shop(receiver.url, _order("h1", 1, datetime.now(UTC)))
        assert sent.status_code == 503  # not acknowledged: the sender will retry
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
    assert httpx.get(f"{receiver.url}/health", timeout=30).status_code == 200
    assert _send_shop(receiver.url, _order("h1", 1, datetime.now(UTC))).status_code == 200


def test_starts_not_ready_while_the_warehouse_is_unreachable(postgres, tmp_path):
    url = postgres.new("wh")
    name = sa.make_url(url).database
    with postgres.admin.connect() as conn:
        conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false'))
    receiver = Receiver(write_config(tmp_path, stream_config(url))).start(until="/health/live")
    try:
        assert httpx.get(f"{receiver.url}/health", timeout=30).status_code == 503
        assert _send_shop(receiver.url, _order("u1", 1, datetime.now(UTC))).status_code == 503
        with postgres.admin.connect() as conn:
            conn.execute(sa.text(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS true'))
        receiver.wait_ready(60)  # the tables are created once the warehouse answers
        assert _send_shop(receiver.url, _order("u1", 1, datetime.now(UTC))).status_code == 200
    finally:
        receiver.stop()
    assert [r[0] for r in _rows(url, "SELECT event_id FROM shop_events")] == ["u1"]
