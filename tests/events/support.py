"""What the events tests share: a real receiver (`pipewarden events serve` in a process of its
own on 127.0.0.1, ready once /health/ready answers 200, polled with a deadline), a signing
sender, webhook signatures as Shopify and Stripe make them, and an orders source."""

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
import yaml

SHOP_SECRET = "shop-test-secret-7f3a"
PAY_SECRET, PAY_OLD_SECRET = "whsec_new_9c1d", "whsec_old_2b8e"
ENV = {"PW_SHOP_SECRET": SHOP_SECRET, "PW_PAY_SECRET": PAY_SECRET, "PW_PAY_OLD": PAY_OLD_SECRET}


def stream_config(warehouse_url: str, source_url: str | None = None) -> dict[str, Any]:
    """Two streams: `shop` signed Shopify-style, `pay` Stripe-style with a rotated secret."""
    shop: dict[str, Any] = {
        "signing": {"scheme": "shopify", "secrets": "${PW_SHOP_SECRET}"},
        "event_types": ["order.paid", "cart.updated", "cart.abandoned"],
        "subject": "json:customer_id",
        "landing_table": "shop_events",
        "latest_table": "shop_latest",
        "fields": {"customer_id": "integer", "total": "float"},
        "columns": {"customer_id": {"nullable": False}, "total": {"between": [0, None]}},
        "max_body_bytes": 4096,
        "freshness": {"warn_after": "10m", "error_after": "1h"},
    }
    config: dict[str, Any] = {
        "warehouse": {"url": warehouse_url},
        "sources": {},
        "tables": {},
        "streams": {
            "shop": shop,
            "pay": {
                "signing": {
                    "scheme": "stripe",
                    "secrets": ["${PW_PAY_SECRET}", "${PW_PAY_OLD}"],
                    "tolerance": "5m",
                },
                "event_types": ["charge.succeeded"],
                "landing_table": "pay_events",
            },
        },
    }
    if source_url is not None:
        config["sources"]["shop"] = {"url": source_url}
        shop["reconcile"] = {
            "source": "shop",
            "table": "orders",
            "key": "order_id",
            "time_column": "paid_at",
            "event_type": "order.paid",
            "event_key": "json:order_id",
            "where": {"status": "paid"},
            "settle": "0s",
        }
    return config


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Receiver:
    """A running `pipewarden events serve` process."""

    config_path: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    extra_args: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, deadline_seconds: float = 90, until: str = "/health/ready") -> "Receiver":
        log = open(self.config_path.parent / f"receiver-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipewarden.cli.main", "events", "serve"]
            + ["--config", str(self.config_path), "--port", str(self.port), *self.extra_args],
            env={**os.environ, **ENV},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready(deadline_seconds, until)
        return self

    def wait_ready(self, deadline_seconds: float, path: str = "/health/ready") -> None:
        deadline = time.monotonic() + deadline_seconds
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise RuntimeError(f"receiver exited with {self.proc.returncode}: {self.log()}")
            try:
                if httpx.get(f"{self.url}{path}", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # a poll interval; the deadline is what bounds the wait
        raise TimeoutError(f"receiver not ready within {deadline_seconds}s: {self.log()}")

    def log(self) -> str:
        path = self.config_path.parent / f"receiver-{self.port}.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def kill(self) -> None:
        """SIGKILL this receiver (the process this test started, by its pid)."""
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)


def write_config(folder: Path, config: dict[str, Any]) -> Path:
    path = folder / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def body_of(payload: Any) -> bytes:
    return payload if isinstance(payload, bytes) else json.dumps(payload).encode()


def query(url: str, sql: str, **params: Any) -> list[Any]:
    """The rows of one query on a database of the test (a connection of its own)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return list(conn.execute(sa.text(sql), params))
    finally:
        engine.dispose()


def orders_source(url: str, start: datetime) -> None:
    """A source `orders` of 40 orders a minute apart from `start`, the first 30 paid."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE orders (order_id integer PRIMARY KEY, customer_id integer, "
                "total numeric(10, 2), status text, paid_at timestamptz)"
            )
        )
        rows = [
            {
                "id": i,
                "c": i % 5,
                "t": i * 1.5,
                "s": "paid" if i <= 30 else "pending",
                "at": start + timedelta(minutes=i),
            }
            for i in range(1, 41)
        ]
        conn.execute(sa.text("INSERT INTO orders VALUES (:id, :c, :t, :s, :at)"), rows)
    engine.dispose()


def shopify_headers(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}


def stripe_headers(secret: str, body: bytes, at: float | None = None) -> dict[str, str]:
    t = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}"}
