"""Per-source read slots: Prefect global concurrency limits from `max_concurrent_reads`."""

import threading
from pathlib import Path
from uuid import uuid4

import pytest

from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.flows.slots import (
    ReadSlotTimeout,
    ensure_read_limits,
    limit_name,
    read_slot,
    task_tags,
)

pytestmark = pytest.mark.prefect


def _config(source: str, slots: int | None, timeout: str = "1h") -> PipewardenConfig:
    settings: dict[str, object] = {"url": "sqlite://", "read_slot_timeout": timeout}
    if slots is not None:
        settings["max_concurrent_reads"] = slots
    return parse_config(
        {
            "warehouse": {"url": "sqlite://"},
            "sources": {source: settings, "other": {"url": "sqlite://"}},
            "tables": {"orders": {"source": source, "primary_key": "id", "cursor": "u"}},
        },
        Path("t.yaml"),
    )


def test_limits_follow_the_configuration(prefect_harness: None) -> None:
    from prefect.client.orchestration import get_client

    source = f"shop{uuid4().hex[:8]}"
    assert ensure_read_limits(_config(source, 3)) == {limit_name(source): 3}
    assert ensure_read_limits(_config(source, 1)) == {limit_name(source): 1}
    with get_client(sync_client=True) as client:
        limit = client.read_global_concurrency_limit_by_name(limit_name(source))
        names = {gcl.name for gcl in client.read_global_concurrency_limits(limit=200)}
    assert limit.limit == 1 and limit.active
    assert limit_name("other") not in names  # no max_concurrent_reads: no limit
    assert task_tags(_config(source, 1), "orders", "sync") == [
        "table:orders",
        f"source:{source}",
        "stage:sync",
    ]


def test_a_read_waits_for_a_slot_and_fails_naming_the_source_after_its_timeout(
    prefect_harness: None,
) -> None:
    source = f"shop{uuid4().hex[:8]}"
    config = _config(source, 1, timeout="1s")
    ensure_read_limits(config)
    outcome: list[BaseException | None] = []

    def second_reader() -> None:
        try:
            with read_slot(config, source):
                outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - the test inspects it
            outcome.append(error)

    with read_slot(config, source):
        reader = threading.Thread(target=second_reader)
        reader.start()
        reader.join(timeout=60)
    (error,) = outcome
    assert isinstance(error, ReadSlotTimeout)
    assert f"source {source}: no read slot came free within 1 s" in str(error)
    assert "max_concurrent_reads 1" in str(error)
    # Released: the next read gets it. Prefect frees a slot through its API, which may take
    # longer than the 1 s wait above on a loaded machine, so this read may wait longer.
    with read_slot(_config(source, 1, timeout="60s"), source):
        pass
