"""Durable before acknowledged: a receiver killed with SIGKILL under a load of signed requests
loses no acknowledged event and, restarted, stores none twice."""

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import httpx
import sqlalchemy as sa

from tests.events.support import SHOP_SECRET, Receiver, shopify_headers, stream_config, write_config

SENDERS = 16


def _delivery(event_id: str, worker: int) -> tuple[bytes, dict[str, str]]:
    """A signed order.paid of `worker`'s customer."""
    body = json.dumps(
        {
            "id": event_id,
            "type": "order.paid",
            "created_at": datetime.now(UTC).isoformat(),
            "customer_id": worker,
            "total": 1.0,
        }
    ).encode()
    return body, shopify_headers(SHOP_SECRET, body)


def test_sigkill_under_load_loses_no_acknowledged_event(postgres, tmp_path):
    url = postgres.new("wh")
    receiver = Receiver(write_config(tmp_path, stream_config(url))).start()
    acknowledged: set[str] = set()
    lock = threading.Lock()
    enough = threading.Event()  # some acknowledgements in: time to kill
    stop = threading.Event()

    def sender(worker: int) -> None:
        with httpx.Client(timeout=10) as client:
            i = 0
            while not stop.is_set():
                event_id = f"w{worker}-{i}"
                body, headers = _delivery(event_id, worker)
                try:
                    answer = client.post(
                        f"{receiver.url}/events/shop", content=body, headers=headers
                    )
                except httpx.TransportError:
                    return  # the receiver died under this request: not acknowledged
                if answer.status_code == 200:
                    with lock:
                        acknowledged.add(event_id)
                        if len(acknowledged) >= 300:
                            enough.set()
                i += 1

    try:
        with ThreadPoolExecutor(SENDERS) as pool:
            for w in range(SENDERS):
                pool.submit(sender, w)
            assert enough.wait(120), receiver.log()
            receiver.kill()  # requests are in flight: some were committed, unacknowledged
            stop.set()
        restarted = Receiver(receiver.config_path).start()
        try:
            # Every acknowledged event delivered again (as a sender retrying would): all
            # are duplicates now, none is stored twice.
            with httpx.Client(timeout=30) as client:
                again = []
                for event_id in sorted(acknowledged)[:50]:
                    body, headers = _delivery(event_id, int(event_id[1:].split("-")[0]))
                    again.append(
                        client.post(f"{restarted.url}/events/shop", content=body, headers=headers)
                    )
            assert {a.json()["status"] for a in again} == {"duplicate"}
        finally:
            restarted.stop()
    finally:
        stop.set()
        receiver.stop()
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = list(conn.execute(sa.text("SELECT event_id, count(*) FROM shop_events GROUP BY 1")))
    engine.dispose()
    stored = {r[0] for r in rows}
    assert acknowledged <= stored, f"lost: {sorted(acknowledged - stored)[:10]}"
    assert {r[1] for r in rows} == {1}
