"""The campaign gate as Prefect events, and the example automations that pause and resume the
send deployment: the flow in Prefect's test harness, the events as emitted, the automations
read by Prefect's own models and matched by the server's triggers."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import pytest
import sqlalchemy as sa
import yaml
from prefect.events.clients import AssertingEventsClient
from prefect.events.worker import EventsWorker

from pipewarden.config import load_config
from pipewarden.profiles.publish import build_and_publish
from pipewarden.serve.campaign_gate import GO_EVENT, HOLD_EVENT, campaign_gate_flow
from tests.events.support import free_port
from tests.profiles.test_ready import _newest_row, _setup

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "automations" / "pause-sends-on-hold.yaml"


@pytest.fixture
def emitted(monkeypatch: pytest.MonkeyPatch) -> Iterator[EventsWorker]:
    """Prefect's asserting events worker: what the flow emits is kept, not sent."""
    worker = EventsWorker.instance(AssertingEventsClient)
    monkeypatch.setattr(EventsWorker, "instance", lambda *_: worker)
    try:
        yield worker
    finally:
        worker.drain()


def _send_deployment() -> UUID:
    """A send deployment on the harness's server, as a user's newsletter flow would have."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name("send-newsletter")
        return client.create_deployment(flow_id=flow_id, name="spring")


def _events(worker: EventsWorker) -> list[Any]:
    worker.drain()
    client = worker._client
    assert isinstance(client, AssertingEventsClient)
    return [e for e in client.events if e.event.startswith("pipewarden.campaign.")]


def _automations() -> dict[str, Any]:
    from prefect.events.schemas.automations import AutomationCore

    data = yaml.safe_load(EXAMPLE.read_text())
    parsed = [AutomationCore.model_validate(a) for a in data["automations"]]  # as the CLI does
    return {a.name: a for a in parsed}


def _received(event: Any) -> Any:
    from prefect.server.events.schemas.events import ReceivedEvent

    return ReceivedEvent.model_validate(
        {**event.model_dump(mode="json"), "received": datetime.now(UTC).isoformat()}
    )


def _covers(automation: Any, event: Any) -> bool:
    from prefect.server.events.schemas.automations import EventTrigger

    return EventTrigger.model_validate(automation.trigger.model_dump()).covers(_received(event))


def test_hold_is_emitted_with_its_reasons_and_pauses_the_send_deployment(
    prefect_harness: None, emitted: EventsWorker, warehouse_url: str, tmp_path: Path
) -> None:
    from prefect.server.events.actions import _id_of_first_resource_of_kind

    engine, path = _setup(warehouse_url, tmp_path, ["segment"])
    _newest_row(engine, timedelta(hours=5))  # orders past their error_after of 2h
    build_and_publish(engine, load_config(path))
    send = _send_deployment()

    answer = campaign_gate_flow(
        campaign="spring", send_deployment="send-newsletter/spring", config_path=str(path)
    )

    assert answer["decision"] == "hold"
    (event,) = _events(emitted)
    assert event.event == HOLD_EVENT
    assert event.resource.id == "pipewarden.campaign.spring"
    assert event.payload == {"decision": "hold", "reasons": answer["reasons"]}
    assert any("orders" in reason for reason in event.payload["reasons"])
    automations = _automations()
    pause = automations["pipewarden-pause-send-on-hold"]
    resume = automations["pipewarden-resume-send-on-go"]
    assert _covers(pause, event) and not _covers(resume, event)
    (action,) = pause.actions
    assert (action.type, action.source) == ("pause-deployment", "inferred")
    assert _id_of_first_resource_of_kind(_received(event), "prefect.deployment") == send


def test_go_is_emitted_and_resumes_the_send_deployment(
    prefect_harness: None, emitted: EventsWorker, warehouse_url: str, tmp_path: Path
) -> None:
    engine, path = _setup(warehouse_url, tmp_path, ["segment"])
    _newest_row(engine, timedelta(minutes=5))
    build_and_publish(engine, load_config(path))
    _send_deployment()

    answer = campaign_gate_flow(
        campaign="spring", send_deployment="send-newsletter/spring", config_path=str(path)
    )

    assert answer == {"campaign": "spring", "decision": "go", "reasons": []}
    (event,) = _events(emitted)
    assert event.event == GO_EVENT
    automations = _automations()
    assert _covers(automations["pipewarden-resume-send-on-go"], event)
    assert not _covers(automations["pipewarden-pause-send-on-hold"], event)


def test_without_a_send_deployment_no_automation_acts(
    prefect_harness: None, emitted: EventsWorker, warehouse_url: str, tmp_path: Path
) -> None:
    engine, path = _setup(warehouse_url, tmp_path, ["segment"])
    _newest_row(engine, timedelta(hours=5))

    campaign_gate_flow(campaign="spring", config_path=str(path))

    (event,) = _events(emitted)
    assert event.event == HOLD_EVENT
    assert [r.role for r in event.related if r.role == "send-deployment"] == []
    assert not any(_covers(a, event) for a in _automations().values())


def test_an_unreachable_warehouse_emits_hold_and_fails_the_run(
    prefect_harness: None, emitted: EventsWorker, tmp_path: Path
) -> None:
    """As GET /ready answers 503 hold: a gate that cannot ask must pause the send, not leave
    it as the last `go` left it; the run still ends Failed, naming the error."""
    config = {
        "warehouse": {"url": f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none"},
        "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
        "tables": {"orders": {"source": "shop", "primary_key": "order_id", "cursor": "ts"}},
        "campaigns": {"spring": {"tables": ["orders"]}},
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))
    send = _send_deployment()

    with pytest.raises(sa.exc.OperationalError):
        campaign_gate_flow(
            campaign="spring", send_deployment="send-newsletter/spring", config_path=str(path)
        )

    (event,) = _events(emitted)
    assert event.event == HOLD_EVENT
    assert event.payload["reasons"] == ["the warehouse did not answer (OperationalError)"]
    assert _covers(_automations()["pipewarden-pause-send-on-hold"], event)
    from prefect.server.events.actions import _id_of_first_resource_of_kind

    assert _id_of_first_resource_of_kind(_received(event), "prefect.deployment") == send
