"""When a task is worth retrying: transient errors only (lost connections, time-outs, locks)."""

from typing import Any

from pipewarden.db.errors import is_transient


def retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    """`retry_condition_fn` for tasks that touch a database: never retry a wrong password."""
    try:
        state.result()
    except Exception as error:  # noqa: BLE001 - the state re-raises whatever the task raised
        return is_transient(error)
    return False
