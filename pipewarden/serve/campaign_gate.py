"""The campaign gate as Prefect events: `pipewarden.campaign.hold` (with the reasons) or
`pipewarden.campaign.go`, for an automation to pause or resume the send deployment.

The event's resource is the campaign (`pipewarden.campaign.NAME`); the send deployment, when
named, is the first related resource (role `send-deployment`; Prefect appends the run's own
after it), so one automation with `source: inferred` serves every campaign
(`examples/automations/pause-sends-on-hold.yaml`). The flow lives here, beside `ready.py`,
because the answer it emits is the serve layer's (`flows` sits below it).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from prefect import flow, get_run_logger
from prefect.events import Event, emit_event

from pipewarden.config import load_config
from pipewarden.serve.ready import GO, Readiness, readiness, unreachable

HOLD_EVENT = "pipewarden.campaign.hold"
GO_EVENT = "pipewarden.campaign.go"
#: The send deployment's role in the event: not `deployment`, which Prefect gives the gate's
#: own deployment when it runs as one (an automation must never pause the gate).
SEND_ROLE = "send-deployment"


def readiness_event(answer: Readiness, send_deployment: UUID | None = None) -> dict[str, Any]:
    """The event's parts (`emit_event`'s arguments): the decision and the reasons in the payload."""
    related = []
    if send_deployment is not None:
        related.append(
            {
                "prefect.resource.id": f"prefect.deployment.{send_deployment}",
                "prefect.resource.role": SEND_ROLE,
            }
        )
    return {
        "event": GO_EVENT if answer.decision == GO else HOLD_EVENT,
        "resource": {
            "prefect.resource.id": f"pipewarden.campaign.{answer.campaign}",
            "prefect.resource.name": answer.campaign,
        },
        "related": related,
        "payload": {"decision": answer.decision, "reasons": list(answer.reasons)},
    }


def emit_readiness(answer: Readiness, send_deployment: UUID | None = None) -> Event | None:
    """Emit the answer as a Prefect event (None when no Prefect API is configured)."""
    return emit_event(**readiness_event(answer, send_deployment))


def _deployment_id(name: str) -> UUID:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return client.read_deployment_by_name(name).id


@flow(name="pipewarden-campaign-gate")
def campaign_gate_flow(
    campaign: str, send_deployment: str | None = None, config_path: str | None = None
) -> dict[str, Any]:
    """Ask whether `campaign` may send and emit the answer as an event.

    Args:
        campaign: A campaign of the configuration (`campaigns:`).
        send_deployment: The deployment that sends it, as FLOW/DEPLOYMENT: named in the event,
            so an automation can pause it on hold and resume it on go.
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
    """
    import sqlalchemy as sa

    from pipewarden.db.engines import make_engine

    config = load_config(config_path)
    engine = make_engine(config.warehouse.url, config.timeouts.engine())
    target = _deployment_id(send_deployment) if send_deployment else None
    try:
        answer = readiness(engine, config, campaign)
    except sa.exc.DBAPIError as error:
        # Hold as GET /ready does (the send must not go on the last `go`), then fail the run.
        emit_readiness(unreachable(campaign, error), target)
        raise
    finally:
        engine.dispose()
    emit_readiness(answer, target)
    logger = get_run_logger()
    logger.info("%s: %s", campaign, answer.decision)
    for reason in answer.reasons:
        logger.warning("%s: %s", campaign, reason)
    return answer.as_dict()
