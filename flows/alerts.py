"""The alerts deployment: the outbox delivered to Slack, and the same step after the other flows.

Slack's own failures never fail the task: `deliver_pending` leaves those alerts in the outbox
for the next run. The task retries only when the warehouse itself was out of reach.
"""

from typing import Any

from prefect import flow, get_run_logger, task
from prefect.tasks import exponential_backoff

from pipewarden.config import PipewardenConfig, load_config
from pipewarden.config.urls import redact_secrets
from pipewarden.flows.retries import retry_if_transient


@task(
    retries=2,
    retry_delay_seconds=exponential_backoff(backoff_factor=5),
    retry_jitter_factor=0.5,
    retry_condition_fn=retry_if_transient,
    task_run_name="deliver-alerts",
)
def deliver_alerts_task(config_path: str | None) -> dict[str, Any]:
    """Deliver what waits in the outbox; returns the counts (a plain dict for Prefect)."""
    from pipewarden.alerts.deliver import deliver_pending

    return deliver_pending(load_config(config_path)).as_dict()


@flow(name="pipewarden-alerts")
def alerts_flow(config_path: str | None = None) -> dict[str, Any]:
    """Deliver the outbox now: what an outage of Slack held back goes out here.

    Args:
        config_path: The configuration: a file, prefect-variable:NAME or prefect-secret:NAME
            (default: PIPEWARDEN_CONFIG, else ./pipewarden.yaml in the working directory).
    """
    counts = deliver_alerts_task(config_path)
    get_run_logger().info("alerts: %s", counts)
    return counts


def deliver_after(config_path: str | None, config: PipewardenConfig | None = None) -> None:
    """The other flows' last step: deliver what they raised, if Slack is configured.

    Never raises: the flows call it in a `finally`, where an exception of its own would take
    the place of the flow's. A configuration that cannot be loaded, or a delivery that fails,
    is logged; the flow's own outcome stays what its work made it, and the alerts wait in the
    outbox for the alerts deployment. A flow that loaded the configuration passes it as `config`
    (a load of 2,000 tables costs 0.4 s).
    """
    try:
        configured = (config or load_config(config_path)).slack is not None
    except Exception as error:  # noqa: BLE001 - whatever it is, the flow's own outcome wins
        message = "alert delivery skipped, alerts stay in the outbox: %s"
        get_run_logger().warning(message, redact_secrets(f"{type(error).__name__}: {error}"))
        return
    if not configured:
        return
    state = deliver_alerts_task(config_path, return_state=True)
    if state.is_failed():
        message = "alert delivery failed, alerts stay in the outbox: %s"
        get_run_logger().warning(message, state.message)
        return
    from pipewarden.alerts.deliver import undelivered_warning

    warning = undelivered_warning(state.result())
    if warning is not None:  # no usable token, Slack down: said once per run, never raised
        get_run_logger().warning("%s", warning)
