"""What fails a run under each fail_on, and what its message says (plain functions)."""

from typing import Any

import pytest

from pipewarden.verdict import (
    MESSAGE_PROBLEMS,
    check_problems,
    failing,
    failure_message,
    reconcile_problems,
    sync_problems,
)


def _reconcile(applied: bool, **changes: Any) -> dict[str, Any]:
    """A reconciliation result in `ReconcileReport.as_dict`'s shape."""
    result: dict[str, Any] = {
        "run_id": "r1",
        "table": "orders",
        "counts": {"missing": 1, "extra": 0, "changed": 2},
        "missing": [[1]],
        "extra": [],
        "changed": [{"key": [2], "columns": ["amount"]}, {"key": [3], "columns": ["status"]}],
        "complete": True,
        "stopped_by": None,
        "coverage": 1.0,
        "key_problems": [],
        "repair": {"applied": applied, "remaining": 0 if applied else None, "remaining_keys": []},
    }
    result.update(changes)
    return result


def test_levels_under_each_fail_on() -> None:
    rows = [
        {"table": "orders", "check": "freshness", "status": "error", "reason": "3h old"},
        {"table": "orders", "check": "anomaly:rows", "status": "anomaly", "reason": "spike"},
        {"table": "events", "check": "drift:kind", "status": "warn", "reason": "shifted"},
        {"table": "events", "check": "freshness", "status": "ok", "reason": ""},
        {"table": "crm", "check": "null_rate:email", "status": "insufficient_history"},
    ]
    problems = check_problems(rows)
    assert [(p.table, p.check, p.level.label) for p in problems] == [
        ("orders", "freshness", "error"),
        ("orders", "anomaly:rows", "warn"),
        ("events", "drift:kind", "warn"),
    ]
    assert [p.check for p in failing(problems, "error")] == ["freshness"]
    assert len(failing(problems, "warn")) == 3
    assert failing(problems, "never") == []


def test_differences_left_name_their_keys_and_the_repair() -> None:
    (dry,) = reconcile_problems([_reconcile(False)], {})
    assert dry.level.label == "error"
    assert dry.detail == "3 differences left (1 missing, 0 extra, 2 changed; keys [1], [2], [3])"
    assert "table=orders, repair=true" in dry.action

    repaired = _reconcile(True)
    (fixed,) = reconcile_problems([repaired], {})
    assert fixed.level.label == "warn"
    assert fixed.detail.startswith("3 differences found and repaired")

    repaired["repair"] = {
        "applied": True,
        "remaining": 1,
        "remaining_keys": [{"key": [2], "diff": "changed"}],
    }
    (left,) = reconcile_problems([repaired], {})
    assert left.level.label == "error"
    assert "1 of 3 differences remain after the repair" in left.detail
    assert "keys [2]" in left.detail and "run r1" in left.action


def test_an_incomplete_comparison_is_a_warning_and_bad_source_keys_an_error() -> None:
    stopped = _reconcile(
        False,
        counts={"missing": 0, "extra": 0, "changed": 0},
        missing=[],
        changed=[],
        complete=False,
        stopped_by="max_seconds",
        coverage=0.4,
    )
    (partial,) = reconcile_problems([stopped], {})
    assert partial.level.label == "warn"
    assert partial.detail.startswith("compared 40.0% of the table")
    stopped.update(
        stopped_by=None,
        key_problems=[{"message": "2 source rows have a NULL order_id"}],
    )
    (keys,) = reconcile_problems([stopped], {})
    assert keys.level.label == "error" and keys.detail == "2 source rows have a NULL order_id"


def test_sync_failures_and_held_rows() -> None:
    summaries = [
        {"table": "orders", "rows_quarantined": 4},
        {"table": "crm", "rows_quarantined": 0},
    ]
    problems = sync_problems(summaries, {"events": "SyncError: no such table"})
    assert [(p.table, p.check, p.level.label) for p in problems] == [
        ("events", "sync", "error"),
        ("orders", "quarantine", "warn"),
    ]
    assert "tables=[events]" in problems[0].action


@pytest.mark.parametrize("count", [1, MESSAGE_PROBLEMS + 2])
def test_the_message_counts_and_names_the_first_problems(count: int) -> None:
    errors = {f"t{i}": "boom" for i in range(count)}
    message = failure_message(sync_problems([], errors))
    assert message.startswith(f"{count} problem")
    assert "t0 · sync (error): the sync failed: boom" in message
    named = min(count, MESSAGE_PROBLEMS)
    assert message.count("· sync (error)") == named
    assert ("and 2 more" in message) == (count > MESSAGE_PROBLEMS)
