"""Whether a run's data needs attention: what decides the Prefect state of a flow.

A flow whose checks found an error, whose reconciliation left differences or whose sync failed
ends Failed, so Prefect's automations and notifications can react; warnings (a warn-level or
anomalous check, rows held in quarantine, differences found and repaired, an incomplete
comparison) fail it only under `fail_on: warn`. The flows only turn this verdict into a state.
"""

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pipewarden.config.models import FailOn
from pipewarden.records.evidence import Severity

#: Problems named one by one in a state message; the others are counted.
MESSAGE_PROBLEMS = 5
#: Keys named in one problem's detail.
MESSAGE_KEYS = 5


@dataclass(frozen=True)
class Problem:
    """One thing a run found that someone should look at, and what to do about it."""

    table: str
    check: str
    level: Severity
    detail: str
    action: str

    def line(self) -> str:
        return f"{self.table} · {self.check} ({self.level.label}): {self.detail}. {self.action}"


class NeedsAttention(Exception):
    """A run that did its work and found data that needs attention. `result` is what the
    run returns otherwise, so a caller that expects problems can still show it."""

    def __init__(self, message: str, result: Any, problems: Sequence[Problem]) -> None:
        super().__init__(message)
        self.result = result
        self.problems = list(problems)


def failing(problems: Iterable[Problem], fail_on: FailOn) -> list[Problem]:
    """The problems that fail the run under `fail_on`."""
    if fail_on == "never":
        return []
    least = Severity.ERROR if fail_on == "error" else Severity.WARN
    return [p for p in problems if p.level >= least]


def failure_message(problems: Sequence[Problem]) -> str:
    """The state message: how many, then the first few problems, each with what to do."""
    count = len(problems)
    head = f"{count} problem{'s' if count != 1 else ''} need{'s' if count == 1 else ''} attention"
    lines = [p.line() for p in problems[:MESSAGE_PROBLEMS]]
    if count > MESSAGE_PROBLEMS:
        lines.append(f"… and {count - MESSAGE_PROBLEMS} more (see the run's artifacts and logs)")
    return f"{head}: " + " | ".join(lines)


def sync_problems(
    summaries: Sequence[Mapping[str, Any]], errors: Mapping[str, str]
) -> list[Problem]:
    """A table whose sync failed (error), rows held in quarantine (warning)."""
    problems = [
        Problem(
            table,
            "sync",
            Severity.ERROR,
            f"the sync failed: {_short(error)}",
            "The watermark did not move and nothing was lost: fix the cause, then rerun "
            f"the sync-manual deployment with tables=[{table}] (or `pipewarden sync {table}`)",
        )
        for table, error in errors.items()
    ]
    for s in summaries:
        held = s.get("rows_quarantined") or 0
        if held:
            problems.append(
                Problem(
                    s["table"],
                    "quarantine",
                    Severity.WARN,
                    f"{held} rows held in quarantine by the table's checks",
                    f"See why with `pipewarden quarantine list {s['table']}`; once the source "
                    "or the check is fixed, `pipewarden quarantine replay` loads them",
                )
            )
    return problems


#: What to do about a failing check, by the kind of check (the part before ':').
_CHECK_ACTIONS = {
    "freshness": "Look at the table's last syncs (`pipewarden status`) and at its source",
    "anomaly": "Compare the metric with the source before trusting the table "
    "(`pipewarden check {table}`)",
    "drift": "A column's values changed shape: look at what the source writes into it",
    "null_rate": "A column fills with NULLs: look at what the source writes into it",
}


def check_problems(rows: Iterable[Mapping[str, Any]]) -> list[Problem]:
    """Checks with status error (errors), warn or anomaly (warnings), from the flow's rows."""
    problems = []
    for r in rows:
        status = r["status"]
        severity = Severity.of(status)
        if severity is Severity.OK:
            continue
        kind = str(r["check"]).split(":", 1)[0]
        action = _CHECK_ACTIONS.get(kind, "See `pipewarden check {table}`")
        problems.append(
            Problem(
                r["table"],
                r["check"],
                severity,
                f"{status}: {_short(r.get('reason') or '')}",
                action.format(table=r["table"]),
            )
        )
    return problems


def reconcile_problems(
    results: Sequence[Mapping[str, Any]], errors: Mapping[str, str]
) -> list[Problem]:
    """Differences left (error): found by a dry run, or remaining after a repair. Differences
    repaired, or a comparison stopped before it covered the table, are warnings."""
    problems = [
        Problem(
            table,
            "reconcile",
            Severity.ERROR,
            f"the reconciliation failed: {_short(error)}",
            f"Fix the cause, then rerun the reconcile-rerun deployment with table={table}",
        )
        for table, error in errors.items()
    ]
    for r in results:
        problems += _reconcile_result_problems(r)
    return problems


def _reconcile_result_problems(r: Mapping[str, Any]) -> list[Problem]:
    table, counts, repair = r["table"], r["counts"], r["repair"]
    found = counts["missing"] + counts["extra"] + counts["changed"]
    split = f"{counts['missing']} missing, {counts['extra']} extra, {counts['changed']} changed"
    out = []
    if repair["applied"]:
        remaining = repair.get("remaining") or 0
        if remaining:
            left = [k["key"] for k in repair.get("remaining_keys", [])]
            out.append(
                Problem(
                    table,
                    "reconcile",
                    Severity.ERROR,
                    f"{remaining} of {found} differences remain after the repair "
                    f"({split}; keys {_keys(left)})",
                    "The source changed during the repair or a row cannot be written: see "
                    f"pipewarden_reconcile_repairs for run {r['run_id']}, then rerun the "
                    f"reconcile-rerun deployment with table={table}, repair=true",
                )
            )
        elif found:
            out.append(
                Problem(
                    table,
                    "reconcile",
                    Severity.WARN,
                    f"{found} differences found and repaired ({split})",
                    "The sync missed them: look for hard deletes or a cursor that does not "
                    "move in the source",
                )
            )
    elif found:
        keys = [*r["missing"], *r["extra"], *(c["key"] for c in r["changed"])]
        out.append(
            Problem(
                table,
                "reconcile",
                Severity.ERROR,
                f"{found} differences left ({split}; keys {_keys(keys)})",
                f"Repair them: rerun the reconcile-rerun deployment with table={table}, "
                f"repair=true (or `pipewarden reconcile {table} --repair`)",
            )
        )
    for key_problem in r.get("key_problems", []):
        out.append(
            Problem(
                table,
                "reconcile",
                Severity.ERROR,
                _short(key_problem["message"]),
                "Rows without a usable key are neither compared nor repaired: fix the keys in "
                "the source",
            )
        )
    if not r["complete"] and r["stopped_by"]:
        out.append(
            Problem(
                table,
                "reconcile",
                Severity.WARN,
                f"compared {r['coverage']:.1%} of the table (stopped by {r['stopped_by']})",
                "Give the run more time (max_seconds) or a key range per run",
            )
        )
    return out


def _keys(keys: Sequence[Any]) -> str:
    shown = ", ".join(str(k) for k in keys[:MESSAGE_KEYS])
    return shown + (" …" if len(keys) > MESSAGE_KEYS else "")


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
