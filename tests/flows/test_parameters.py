"""Every deployment's parameters are typed and described in the Prefect UI's run form."""

import pytest
from prefect import Flow
from prefect.utilities.callables import parameter_schema

from pipewarden.flows.alerts import alerts_flow
from pipewarden.flows.checks import checks_flow
from pipewarden.flows.reconcile import reconcile_all_flow, reconcile_flow
from pipewarden.flows.sync import sync_flow

FLOWS = [sync_flow, checks_flow, reconcile_flow, reconcile_all_flow, alerts_flow]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_parameter_has_a_description(flow: Flow) -> None:
    properties = parameter_schema(flow.fn).model_dump()["properties"]
    undescribed = [name for name, p in properties.items() if not p.get("description")]
    assert not undescribed, f"{flow.name}: no description for {undescribed}"


def test_choices_are_offered_as_choices() -> None:
    properties = parameter_schema(sync_flow.fn).model_dump()["properties"]
    (schedule,) = [a for a in properties["schedule_class"]["anyOf"] if "enum" in a]
    assert schedule["enum"] == ["realtime", "hourly", "daily"]
    for flow in (sync_flow, checks_flow, reconcile_flow, reconcile_all_flow):
        fail_on = parameter_schema(flow.fn).model_dump()["properties"]["fail_on"]
        (choice,) = [a for a in fail_on["anyOf"] if "enum" in a]
        assert choice["enum"] == ["error", "warn", "never"]
