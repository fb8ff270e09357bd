"""Findings: what each stage's records say about a (table, check), as alerts understand it.

A finding is the stage's `Evidence` with a verdict: failing, passing, or unknown. Unknown (a
detector still learning, a partial reconciliation that came out clean) neither repeats nor ends
an incident: only a verdict about the whole thing may announce a recovery.
"""

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from pipewarden.config.pii import Redactor
from pipewarden.records.evidence import (
    ADDED,
    DIFFERENCES,
    FAILED,
    INSUFFICIENT,
    OK,
    REWRITTEN,
    WARN,
    Evidence,
)
from pipewarden.records.metrics import CheckResult
from pipewarden.records.reconcile_runs import ReconcileRun
from pipewarden.records.sync_runs import SyncRun

Verdict = Literal["failing", "passing", "unknown"]
FAILING: Final = "failing"
PASSING: Final = "passing"
UNKNOWN: Final = "unknown"


@dataclass(frozen=True)
class Finding:
    """One verdict about one (table, check): the evidence, and what else a message may say."""

    evidence: Evidence
    verdict: Verdict
    #: What the stage adds beyond the evidence (the counts of a reconciliation, the columns a
    #: source added), kept with the alert.
    details: dict[str, Any] = field(default_factory=dict)
    #: Passing, yet worth one message even with no incident open (a repair that fixed what it
    #: found, a new source column).
    notice: bool = False


def from_check_results(results: Iterable[CheckResult]) -> list[Finding]:
    """Failing statuses (warn, error, anomaly) fail; ok passes; insufficient history is unknown."""
    findings = []
    for r in results:
        verdict: Verdict = PASSING
        if r.failing:
            verdict = FAILING
        elif r.status == INSUFFICIENT:
            verdict = UNKNOWN
        findings.append(Finding(r, verdict))
    return findings


def from_sync_run(run: SyncRun) -> list[Finding]:
    """A failed sync fails `sync`; a success passes it, and tells of columns the source added."""
    if run.status == FAILED:
        failed = Evidence(run.table_name, "sync", FAILED, reason=run.error, run_id=run.run_id)
        counts = {"rows_read": run.rows_read, "rows_loaded": run.rows_loaded}
        return [Finding(failed, FAILING, details=counts)]
    synced = f"synced: {run.rows_read} rows read, {run.rows_loaded} loaded"
    ok = Evidence(run.table_name, "sync", OK, reason=synced, run_id=run.run_id)
    passed = Finding(ok, PASSING)
    added = [c["column"] for c in run.schema_changes if c.get("change") == "added"]
    if not added:
        return [passed]
    drift = Evidence(
        run.table_name,
        "schema",
        ADDED,
        reason=f"the source added column(s) {', '.join(added)}; added to the warehouse table",
        run_id=run.run_id,
    )
    return [passed, Finding(drift, PASSING, details={"added": added}, notice=True)]


#: Failure groups (column and check) a quarantine alert names; the rest are counted.
GROUPS_SHOWN = 5
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


def _quoted(example: object) -> str:
    """An example as the alert's text quotes it: control characters escaped (`\\x00`), since a
    NUL held for `refused.nul_character` cannot be stored in PostgreSQL text, nor shown."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(example))


def from_quarantine(
    table_name: str, held: int, groups: Sequence[dict[str, Any]], run_id: str | None
) -> Finding:
    """Rows held in a table's quarantine fail `quarantine` (warn) until none is left.

    `held`: the table's rows held now, after the run; `groups`: the run's failures by column
    and check (`records.quarantine.failures_of_run`), whose examples are stored hidden where
    they are customer data. A run that holds more rows while the incident is open is a repeat;
    the incident closes when a replay releases, or a later sync supersedes, the last held row.
    """
    if not held:
        cleared = Evidence(table_name, "quarantine", OK, observed=0.0, reason="no rows held")
        return Finding(cleared, PASSING)
    this_run = sum(int(g["failures"]) for g in groups)
    parts = [
        f"{g['column']} {g['check']} ×{g['failures']}"
        + (f" (e.g. {', '.join(map(_quoted, g['examples']))})" if g.get("examples") else "")
        for g in groups[:GROUPS_SHOWN]
    ]
    if len(groups) > GROUPS_SHOWN:
        parts.append(f"{len(groups) - GROUPS_SHOWN} more")
    found = f"; this run's failures: {'; '.join(parts)}" if parts else ""
    reason = (
        f"{held} row(s) held in quarantine{found}. Fix the source or the configuration, then "
        f"`pipewarden quarantine replay {table_name}`"
    )
    evidence = Evidence(
        table_name,
        "quarantine",
        WARN,
        observed=float(held),
        expected_low=0.0,
        expected_high=0.0,
        reason=reason,
        run_id=run_id,
    )
    details = {"held": held, "failed_checks_this_run": this_run, "failures": list(groups[:20])}
    return Finding(evidence, FAILING, details=details)


#: Keys named in an alert's reason; the rest are counted (all are in the run's records).
KEYS_SHOWN = 10


@dataclass(frozen=True)
class ShownKeys:
    """How a table's keys and the text quoting them appear in an alert: customer values (a
    `pii` key column, emails, phones) as hash prefixes (`config.pii`)."""

    hide: Redactor
    key_columns: Sequence[str]

    def key(self, key: Any) -> Any:
        return self.hide.key(self.key_columns, key)

    def text(self, text: str | None) -> str | None:
        return None if text is None else self.hide.text(text)


def from_reconcile_run(
    run: ReconcileRun,
    partial: bool,
    remaining: list[dict[str, Any]] | None = None,
    shown: ShownKeys | None = None,
) -> Finding:
    """Differences left (or a failure) fail `reconcile`; a clean run over the whole table passes.

    A keys-only sweep sees no changed values, so it has a check of its own (`reconcile:keys`):
    its clean result must not end an incident of changed rows. A `partial` run (a key range, a
    subset of columns) or one stopped by a budget cannot say the table is clean. `remaining`:
    the keys left differing (`{"key": [...], "diff": kind}`: after a repair, what it could not
    fix; after a dry run, a sample of the differences), named in the alert, as `shown` says
    (customer values hidden).
    """
    if shown is not None and remaining:
        remaining = [{**r, "key": shown.key(r["key"])} for r in remaining]
    key_problems = [shown.text(p) or "" for p in run.key_problems] if shown else run.key_problems
    check = "reconcile:keys" if run.keys_only else "reconcile"
    found = run.missing + run.extra + run.changed
    left = found if run.action != "repair" else (run.remaining or 0)
    details: dict[str, Any] = {
        "missing": run.missing,
        "extra": run.extra,
        "changed": run.changed,
        "rows_compared": run.rows_compared,
        "action": run.action,
        "repaired": run.repaired,
        "remaining": run.remaining,
        "key_range": run.key_range,
    }
    if remaining:
        details["remaining_keys"] = [r["key"] for r in remaining[:100]]
    if run.status == FAILED:
        error = shown.text(run.error) if shown else run.error
        failed = Evidence(run.table_name, check, FAILED, reason=error, run_id=run.run_id)
        return Finding(failed, FAILING, details=details)
    counts = f"{run.missing} missing, {run.extra} extra, {run.changed} changed"
    if left or key_problems:
        # Source keys the rows could not be compared by (NULL, duplicated) fail the check too:
        # the table cannot be called equal to its source.
        parts = [f"{found} rows differ from the source: {counts}"] if left else []
        if left and run.action == "repair":
            parts[0] += f"; repaired {run.repaired}, {left} remain"
        if left and remaining:
            parts[0] += f" ({_keys_text([r['key'] for r in remaining])})"
        differences = Evidence(
            run.table_name,
            check,
            DIFFERENCES,
            observed=float(left),
            expected_low=0.0,
            expected_high=0.0,
            method=f"checksums per bucket, narrowed to rows ({run.mode})",
            reason="; ".join([*parts, *key_problems]),
            run_id=run.run_id,
        )
        if key_problems:
            details = {**details, "key_problems": key_problems}
        return Finding(differences, FAILING, details=details)
    whole = run.complete and not partial
    reason = "no differences from the source"
    if found:
        reason = f"repaired {run.repaired} rows that differed ({counts}); none remain"
    clean = Evidence(run.table_name, check, OK, observed=0.0, reason=reason, run_id=run.run_id)
    return Finding(
        clean, PASSING if whole else UNKNOWN, details=details, notice=whole and found > 0
    )


def repaired_backwards(
    run: ReconcileRun, backwards: dict[str, str], shown: ShownKeys | None = None
) -> Finding:
    """A notice: the repair wrote source rows older (by their cursor) than the warehouse's.

    Nothing is left to fix, but it points at a clock, a restore or a hand edit. `backwards`:
    key (JSON text) → reason (`source_cursor_back` | `warehouse_ahead`), named as `shown` says.
    """

    def key(text: str) -> Any:
        return json.loads(text) if shown is None else shown.key(json.loads(text))

    back = [key(k) for k, r in backwards.items() if r == "source_cursor_back"]
    ahead = [key(k) for k, r in backwards.items() if r != "source_cursor_back"]
    parts = []
    if back:
        parts.append(f"{len(back)} row(s) whose source cursor went backwards ({_keys_text(back)})")
    if ahead:
        parts.append(
            f"{len(ahead)} row(s) whose warehouse cursor was ahead of anything synced "
            f"({_keys_text(ahead)})"
        )
    rewritten = Evidence(
        run.table_name,
        "reconcile:cursor",
        REWRITTEN,
        reason=(
            "repaired to the source's older version: "
            + "; ".join(parts)
            + ". Look for a clock change, a restore or a hand edit."
        ),
        run_id=run.run_id,
    )
    keys = {"source_cursor_back": back[:100], "warehouse_ahead": ahead[:100]}
    return Finding(rewritten, PASSING, details=keys, notice=True)


def _keys_text(keys: list[Any]) -> str:
    shown = ", ".join(
        str(k[0]) if isinstance(k, list) and len(k) == 1 else str(k) for k in keys[:KEYS_SHOWN]
    )
    more = len(keys) - KEYS_SHOWN
    return f"keys {shown}" + (f" and {more} more" if more > 0 else "")
