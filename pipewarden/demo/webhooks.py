"""The demo's real-time half: the shop's checkouts arrive as signed `order.paid` webhooks at a
running receiver; the shop drops a few deliveries and sends a few twice; the reconciliation
against the shop's `checkouts` finds the lost ones and backfills them."""

import json
import random
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import sqlalchemy as sa
from rich.console import Console

from pipewarden.config import PipewardenConfig

STREAM = "shop_webhooks"
NEW_CHECKOUTS, DROPPED, SENT_TWICE = 20, 3, 3

checkouts = sa.Table(
    "checkouts",
    sa.MetaData(),
    sa.Column("order_id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, nullable=False),
    sa.Column("total", sa.Float, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("paid_at", sa.DateTime, nullable=False),
)


def stream_config() -> dict[str, Any]:
    """The demo's stream in pipewarden.yaml (the secret is a demo's: set the variable to yours)."""
    return {
        "signing": {
            "scheme": "shopify",
            "secrets": "${PIPEWARDEN_DEMO_WEBHOOK_SECRET:-demo-only-webhook-secret}",
        },
        "event_types": ["order.paid", "cart.updated"],
        "event_id": "header:X-Shopify-Webhook-Id",
        "event_type": "header:X-Shopify-Topic",
        "event_time": "json:created_at",
        "subject": "json:customer_id",
        "landing_table": "shop_events",
        "latest_table": "shop_latest_by_customer",
        "fields": {"customer_id": "integer", "total": "float"},
        "columns": {"customer_id": {"nullable": False}, "total": {"between": [0, None]}},
        "owner": "#shop-data",
        "freshness": {"warn_after": "30m", "error_after": "2h"},
        "reconcile": {
            "source": "shop",
            "table": "checkouts",
            "key": "order_id",
            "event_key": "json:order_id",
            "event_type": "order.paid",
            "time_column": "paid_at",
            "where": {"status": "paid"},
            "window": "6h",
            "settle": "0s",
        },
    }


@dataclass
class WebhookRound:
    """What the shop sent and what became of it."""

    port: int = 0
    answers: dict[str, int] = field(default_factory=dict)
    dropped: list[int] = field(default_factory=list)
    twice: list[int] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)


def new_checkouts(shop_url: str, rng: random.Random, now: datetime) -> list[dict[str, Any]]:
    """Customers pay: new rows in the shop's checkouts, the source of truth."""
    engine = sa.create_engine(shop_url)
    try:
        checkouts.create(engine, checkfirst=True)
        with engine.begin() as conn:
            top = conn.execute(sa.select(sa.func.max(checkouts.c.order_id))).scalar() or 900_000
            rows = [
                {
                    "order_id": top + i,
                    "customer_id": rng.randint(1, 1500),
                    "total": round(rng.uniform(5, 300), 2),
                    "status": "paid",
                    "paid_at": (now - timedelta(seconds=NEW_CHECKOUTS - i)).replace(tzinfo=None),
                }
                for i in range(1, NEW_CHECKOUTS + 1)
            ]
            conn.execute(checkouts.insert(), rows)
    finally:
        engine.dispose()
    return rows


class RunningReceiver:
    """`pipewarden events serve` in a thread of this process, on a free port of 127.0.0.1."""

    def __init__(self, config: PipewardenConfig) -> None:
        import uvicorn

        from pipewarden.events.app import create_app

        settings = uvicorn.Config(
            create_app(config), host="127.0.0.1", port=0, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(settings)
        self.thread = threading.Thread(target=self.server.run, name="demo-receiver")

    def __enter__(self) -> int:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the demo's receiver did not start")
            time.sleep(0.01)  # polling the started flag, bounded by the deadline
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def send_webhooks(
    config: PipewardenConfig, rows: list[dict[str, Any]], rng: random.Random
) -> WebhookRound:
    """The shop sends each checkout as `order.paid`, drops some and sends some twice."""
    from pipewarden.events.signatures import sign

    signing = config.streams[STREAM].signing
    result = WebhookRound()
    ids = [r["order_id"] for r in rows]
    result.dropped = sorted(rng.sample(ids, DROPPED))
    result.twice = sorted(rng.sample([i for i in ids if i not in result.dropped], SENT_TWICE))
    deliveries: list[tuple[str, str, dict[str, Any]]] = []
    for row in rows:
        payload = {
            "order_id": row["order_id"],
            "customer_id": row["customer_id"],
            "total": row["total"],
            "created_at": row["paid_at"].replace(tzinfo=UTC).isoformat(),
        }
        if row["order_id"] not in result.dropped:
            deliveries.append((f"wh-{row['order_id']}", "order.paid", payload))
        if row["order_id"] in result.twice:
            deliveries.append((f"wh-{row['order_id']}", "order.paid", payload))
    bad_cart = {"customer_id": rows[0]["customer_id"], "total": -12.5, "created_at": _now()}
    deliveries.append((f"wh-cart-{rows[0]['order_id']}", "cart.updated", bad_cart))
    with RunningReceiver(config) as port, httpx.Client(timeout=10) as client:
        result.port = port
        for webhook_id, topic, payload in deliveries:
            body = json.dumps(payload).encode()
            headers = {
                "X-Shopify-Webhook-Id": webhook_id,
                "X-Shopify-Topic": topic,
                "Content-Type": "application/json",
                **sign(signing, body, time.time()),
            }
            answer = client.post(
                f"http://127.0.0.1:{port}/events/{STREAM}", content=body, headers=headers
            )
            status = answer.json().get("status", str(answer.status_code))
            if answer.status_code >= 400:
                status = f"refused {answer.status_code}"
                result.refused.append(answer.json().get("reasons", [{}])[0].get("check", "?"))
            result.answers[status] = result.answers.get(status, 0) + 1
    return result


def _now() -> str:
    return datetime.now(UTC).isoformat()


def show_webhooks(console: Console, config: PipewardenConfig, round_no: int) -> None:
    """The stage as the demo prints it."""
    from pipewarden.events.source_audit import reconcile_stream

    console.print(
        "\n[bold]4. Webhooks[/] (the shop's checkouts as signed order.paid webhooks, received, "
        "then reconciled against the shop)"
    )
    rng = random.Random(31 + round_no)
    rows = new_checkouts(config.sources["shop"].url, rng, datetime.now(UTC))
    sent = send_webhooks(config, rows, rng)
    answers = ", ".join(f"{n} {status}" for status, n in sorted(sent.answers.items()))
    console.print(
        f"  receiver on 127.0.0.1:{sent.port} (POST /events/{STREAM}): {answers}",
        highlight=False,
    )
    console.print(
        f"  the shop sent orders {_ids(sent.twice)} twice (absorbed: stored once), and never "
        f"delivered orders {_ids(sent.dropped)}; a cart with a negative total was refused "
        f"({', '.join(sent.refused)}) and kept in the quarantine",
        highlight=False,
    )
    found = reconcile_stream(config, STREAM)
    console.print(
        f"  reconcile {STREAM} (dry run): {found.source_keys} paid checkouts in the window, "
        f"{len(found.missed)} missed: {_ids(found.missed)}, {len(found.unexpected)} unexpected",
        highlight=False,
    )
    fixed = reconcile_stream(config, STREAM, repair=True)
    console.print(
        f"  reconcile {STREAM} --repair: {len(fixed.backfilled)} backfilled from the shop "
        f"(delivery = 'backfill' in shop_events); {fixed.remaining} remain",
        highlight=False,
    )


def _ids(values: list[Any]) -> str:
    return ", ".join(str(v) for v in values) or "none"
