"""Streams watched like tables: the receiver's metrics, freshness against the SLA with its
alerts, events per hour, and the per-source rate limit."""

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import httpx

from pipewarden.config.load import parse_config
from pipewarden.events.watch import EVENTS_PER_HOUR, check_streams
from tests.events.support import (
    ENV,
    SHOP_SECRET,
    Receiver,
    query,
    shopify_headers,
    stream_config,
    write_config,
)


def _send(url: str, payload: dict, secret: str = SHOP_SECRET) -> httpx.Response:
    body = json.dumps(payload).encode()
    return httpx.post(f"{url}/events/shop", content=body, headers=shopify_headers(secret, body))


def _event(event_id: str, at: datetime, kind: str = "cart.updated", **extra) -> dict:
    payload = {"id": event_id, "type": kind, "created_at": at.isoformat(), "customer_id": 1}
    return {**payload, "total": 3.0, **extra}


def _metrics(url: str) -> dict[tuple[str, str], float]:
    sql = (
        "SELECT metric, labels, sum(value) FROM pipewarden_metrics "
        "WHERE table_name = 'shop' GROUP BY metric, labels"
    )
    return {(m, labels): v for m, labels, v in query(url, sql)}


def test_receiver_writes_stream_metrics(warehouse_url, tmp_path):
    receiver = Receiver(write_config(tmp_path, stream_config(warehouse_url))).start()
    now = datetime.now(UTC)
    try:
        for i in range(5):
            assert (
                _send(receiver.url, _event(f"m{i}", now - timedelta(seconds=2))).status_code == 200
            )
        assert _send(receiver.url, _event("m0", now)).json()["status"] == "duplicate"
        assert _send(receiver.url, _event("p1", now, "order.paid")).status_code == 200
        assert _send(receiver.url, _event("m9", now), secret="wrong").status_code == 401
        assert _send(receiver.url, _event("m8", now, total=-1)).status_code == 422
    finally:
        receiver.stop()  # a graceful stop writes the last interval's metrics
    metrics = _metrics(warehouse_url)
    assert metrics[("events_stored", '{"type": "cart.updated"}')] == 5
    assert metrics[("events_stored", '{"type": "order.paid"}')] == 1
    assert metrics[("events_duplicate", "{}")] == 1
    assert metrics[("events_rejected", '{"reason": "signature"}')] == 1
    assert metrics[("events_quarantined", '{"reason": "greater_than_or_equal_to"}')] == 1
    assert 2 <= metrics[("delivery_latency_p95_seconds", "{}")] < 600
    assert ("freshness_seconds", "{}") in metrics


def test_a_silent_stream_alerts_on_its_sla_and_recovers(warehouse_url, tmp_path, monkeypatch):
    config_dict = stream_config(warehouse_url)
    receiver = Receiver(write_config(tmp_path, config_dict)).start()
    now = datetime.now(UTC)
    try:
        for i in range(3):  # the last events arrived three hours ago
            at = now - timedelta(hours=3, minutes=i)
            assert _send(receiver.url, _event(f"old{i}", at)).status_code == 200
        for name, value in ENV.items():
            monkeypatch.setenv(name, value)
        config = parse_config(config_dict, tmp_path / "pipewarden.yaml")
        results = {r.check: r for r in check_streams(config, ["shop"], now=now)}
        assert results["freshness"].status == "error"
        assert "newest event 3h" in results["freshness"].reason
        assert _alerts(warehouse_url) == [("freshness", "opened", "error")]
        # The command line says the same, and exits 1: the stream needs attention.
        cli = subprocess.run(
            [sys.executable, "-m", "pipewarden.cli.main", "events", "check", "shop"]
            + ["--config", str(receiver.config_path)],
            env={**os.environ, **ENV},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert cli.returncode == 1, cli.stderr
        assert "freshness" in cli.stdout and "error" in cli.stdout
        assert _send(receiver.url, _event("new", now)).status_code == 200
        results = {r.check: r for r in check_streams(config, ["shop"], now=now)}
        assert results["freshness"].status == "ok"
        assert _alerts(warehouse_url)[-1] == ("freshness", "recovered", "ok")
    finally:
        receiver.stop()
    hours = query(
        warehouse_url,
        "SELECT measured_at, value FROM pipewarden_metrics WHERE table_name = 'shop' "
        "AND metric = :m AND labels = '{}' ORDER BY measured_at",
        m=EVENTS_PER_HOUR,
    )
    # The hours of the old events are counted once, whatever the number of check runs; the
    # hours without events count zero, and the hour in progress is not counted yet.
    assert sum(v for _, v in hours) == 3
    assert len({at for at, _ in hours}) == len(hours) == 48


def _alerts(url: str) -> list[tuple[str, str, str]]:
    sql = (
        'SELECT "check", kind, status FROM pipewarden_alerts '
        "WHERE table_name = 'shop' AND \"check\" = 'freshness' ORDER BY id"
    )
    return [tuple(r) for r in query(url, sql)]


def test_rate_limit_per_source(warehouse_url, tmp_path):
    config = stream_config(warehouse_url)
    config["streams"]["shop"]["rate_limit"] = {"per_second": 0.01, "burst": 3}
    receiver = Receiver(write_config(tmp_path, config)).start()
    now = datetime.now(UTC)
    try:
        answers = [_send(receiver.url, _event(f"r{i}", now)) for i in range(5)]
    finally:
        receiver.stop()
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    assert int(answers[3].headers["Retry-After"]) >= 1
