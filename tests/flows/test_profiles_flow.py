"""The profiles deployment: its flow in Prefect's test harness, and its trigger in prefect.yaml
read by Prefect's own models and matched against the events Prefect emits for flow runs."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
import yaml
from pydantic import TypeAdapter

from pipewarden.db.engines import make_engine
from pipewarden.flows.events import reconcile_streams_flow
from pipewarden.flows.profiles import UPSTREAM_FLOWS, profiles_flow
from pipewarden.flows.reconcile import reconcile_all_flow, reconcile_flow
from pipewarden.flows.sync import sync_flow
from tests.profiles.support import profiles_data, shop_tables, unique_suffix

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENT = "profiles-after-syncs"


def _deployment() -> dict[str, Any]:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (found,) = [d for d in spec["deployments"] if d["name"] == DEPLOYMENT]
    return dict(found)


def _flow_run_event(flow_name: str, state: str) -> Any:
    """The event Prefect's server emits when a deployment's flow run enters `state`, its
    related resources made by the server's own function."""
    from prefect.server.events.schemas.events import ReceivedEvent
    from prefect.server.models.events import (
        _as_resource_data,
        _resource_data_as_related_resources,
    )
    from prefect.server.schemas.core import Flow, FlowRun

    flow = Flow(id=uuid4(), name=flow_name)
    run = FlowRun(id=uuid4(), name="brave-otter", flow_id=flow.id, tags=["pipewarden"])
    related = _resource_data_as_related_resources(
        _as_resource_data(run, flow, None, None, None), excluded_kinds=["flow-run"]
    )
    return ReceivedEvent(
        occurred=datetime.now(UTC),
        event=f"prefect.flow-run.{state}",
        resource={"prefect.resource.id": f"prefect.flow-run.{run.id}"},
        related=related,
        id=uuid4(),
    )


def test_the_trigger_fires_on_the_end_of_every_flow_the_profiles_read_and_only_those() -> None:
    from prefect.events import DeploymentTriggerTypes
    from prefect.server.events.schemas.automations import EventTrigger

    deployment = _deployment()
    assert deployment["entrypoint"] == "pipewarden.flows.profiles:profiles_flow"
    (spec,) = deployment["triggers"]
    trigger = TypeAdapter(DeploymentTriggerTypes).validate_python(spec)  # as `prefect deploy`
    trigger.set_deployment_id(uuid4())
    automation = trigger.as_automation()
    served = EventTrigger.model_validate(automation.trigger.model_dump())
    upstream = {f.name for f in (sync_flow, reconcile_flow, reconcile_all_flow)}
    upstream.add(reconcile_streams_flow.name)
    assert set(UPSTREAM_FLOWS) == upstream
    assert set(spec["match_related"]["prefect.resource.name"]) == upstream

    for name in upstream:
        assert served.covers(_flow_run_event(name, "Completed")), name
        assert served.covers(_flow_run_event(name, "Failed")), name
        assert not served.covers(_flow_run_event(name, "Running")), name
    assert not served.covers(_flow_run_event("pipewarden-checks", "Completed"))
    assert not served.covers(_flow_run_event(profiles_flow.name, "Completed"))  # no loop


def _shop_config(tmp_path: Path, url: str) -> tuple[sa.Engine, str, Path]:
    suffix = unique_suffix()
    engine = make_engine(url)
    customers, orders = shop_tables(suffix)
    customers.metadata.create_all(engine)
    now = datetime.now(UTC) - timedelta(hours=1)  # before the next build's lookback
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [{"customer_id": c, "email_consent": True, "updated_at": now} for c in range(1, 31)],
        )
        conn.execute(
            sa.insert(orders),
            [
                {"order_id": c, "customer_id": c, "amount": c, "ordered_at": now, "updated_at": now}
                for c in range(1, 31)
            ],
        )
    path = tmp_path / "pipewarden.yaml"
    path.write_text(json.dumps(profiles_data(url, suffix)))
    return engine, suffix, path


def test_the_flow_builds_checks_and_fails_when_the_profile_table_fails_its_checks(
    prefect_harness: None, sqlite_url: Any, tmp_path: Path
) -> None:
    engine, suffix, path = _shop_config(tmp_path, sqlite_url("profiles_flow"))

    first = profiles_flow(config_path=str(path))

    assert first["build"]["mode"] == "full" and first["build"]["rows"] == 30
    checks = {r["check"]: r["status"] for r in first["checks"]}
    assert checks["schema"] == "ok" and checks["segment_change:champions"] == "ok"
    customers, _ = shop_tables(suffix)
    with engine.begin() as conn:  # deleted behind pipewarden's back
        conn.execute(sa.delete(customers).where(customers.c.customer_id == 3))

    state = profiles_flow(config_path=str(path), return_state=True)

    assert state.is_failed()
    assert f"customer_profiles{suffix} · schema (error)" in (state.message or "")
    assert "30 profiles for 29 customers" in (state.message or "")
