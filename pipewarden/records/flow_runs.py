"""The Prefect flow run a record was written in, so alerts and panels can link to it."""

import sys


def current_flow_run_id() -> str | None:
    """The id of the Prefect flow run this code runs in (from a task or the flow itself), or
    None outside Prefect. Prefect is not imported for it: a CLI run that never loaded Prefect
    is not inside a flow run."""
    if "prefect.context" not in sys.modules:
        return None
    from prefect.context import FlowRunContext, TaskRunContext

    task = TaskRunContext.get()
    if task is not None and task.task_run.flow_run_id is not None:
        return str(task.task_run.flow_run_id)
    flow = FlowRunContext.get()
    if flow is not None and flow.flow_run is not None:
        return str(flow.flow_run.id)
    return None


def current_flow_run_url() -> str | None:
    """The Prefect UI's page of this flow run (Prefect's `PREFECT_UI_URL`), or None outside
    Prefect or without a UI URL."""
    if current_flow_run_id() is None:
        return None
    from prefect.runtime import flow_run

    url = flow_run.ui_url
    return str(url) if url and str(url).startswith(("http://", "https://")) else None
