"""Fixtures of the receiver's tests: a warehouse of each kind and receivers to start on it."""

import base64
import hashlib
import hmac
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.events.receiver import Receiver, write_config


@pytest.fixture(params=["postgresql", "sqlite"])
def warehouse_url(request: pytest.FixtureRequest, make_url: Any) -> str:
    return str(make_url(request.param, "wh"))


@pytest.fixture
def receivers(tmp_path: Path) -> Iterator[Callable[[dict[str, Any]], Receiver]]:
    """`receivers(config)` starts a receiver on the configuration; all are stopped after."""
    started: list[Receiver] = []

    def start(config: dict[str, Any]) -> Receiver:
        receiver = Receiver(write_config(tmp_path, config)).start()
        started.append(receiver)
        return receiver

    yield start
    for receiver in started:
        receiver.stop()


def shopify_headers(secret: str, body: bytes) -> dict[str, str]:
    digest = hmac.new(secret.encode(), body, hashlib.sha256).digest()
    return {"X-Shopify-Hmac-Sha256": base64.b64encode(digest).decode()}


def stripe_headers(secret: str, body: bytes, at: float | None = None) -> dict[str, str]:
    t = int(time.time() if at is None else at)
    mac = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={t},v1={mac}"}
