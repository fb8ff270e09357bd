"""Fixtures of the receiver's tests: receivers to start (on `warehouse_url`, tests/fixtures)."""

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.events.support import Receiver, write_config


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
