"""A flow's final state from what its data showed: Completed, or Failed with a message that
says which table and check and what to do (the verdict itself is `pipewarden.verdict`).

A failed task does not fail its flow by its exception: the flows wait for every task, publish
their artifacts and deliver the alerts, then `finish` names every failed table in one message;
a caller in Python gets `NeedsAttention` with the result and the problems.
"""

from typing import Any, TypeVar

from prefect import get_run_logger
from prefect.states import Failed, State

from pipewarden.verdict import FailOn, NeedsAttention, Problem, failing, failure_message

T = TypeVar("T")


def finish(result: T, problems: list[Problem], fail_on: FailOn) -> T | State[Any]:
    """Log every problem as a warning; return `result`, or a Failed state when a problem fails
    the run under `fail_on`. Called directly, the flow then raises `NeedsAttention`, which
    carries `result`."""
    logger = get_run_logger()
    for problem in problems:
        logger.warning(problem.line())
    failed = failing(problems, fail_on)
    if not failed:
        return result
    message = failure_message(failed)
    return Failed(message=message, data=NeedsAttention(message, result, failed))


def task_errors(states: dict[str, State[Any]]) -> dict[str, str]:
    """Per table, the message of a task that did not complete."""
    return {
        name: state.message or state.name or state.type.value
        for name, state in states.items()
        if state.is_failed()
    }
