"""One table's reconciliation, start to finish: the plain function the CLI, flow and demo call."""

import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from itertools import chain, islice
from typing import Any
from uuid import uuid4

import sqlalchemy as sa

from pipewarden.alerts.announce import raise_alerts
from pipewarden.alerts.findings import ShownKeys, from_reconcile_run, repaired_backwards
from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.config.pii import pii_columns
from pipewarden.config.urls import redact_secrets
from pipewarden.db.engines import cached_engine, connect
from pipewarden.measurements.outcomes import outcome_points
from pipewarden.reconcile.diff import DiffOptions, DiffResult, diff_plan, recheck
from pipewarden.reconcile.diff_json import changed_pieces, key_pieces
from pipewarden.reconcile.diff_records import diff_frames
from pipewarden.reconcile.keys import Key, json_key
from pipewarden.reconcile.plan import TablePlan, plan_table
from pipewarden.reconcile.repair import RepairOutcome, plan_repair, repair, settle_audit
from pipewarden.reconcile.row_diff import RowDiff
from pipewarden.reconcile.settle import Settled, settle, table_gate
from pipewarden.records.metrics import MetricPoint, write_metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.pii_salt import redactor
from pipewarden.records.reconcile_runs import (
    DiffRecord,
    ReconcileRun,
    finish_run,
    start_run,
    write_diff_frames,
)

#: Differing keys a dry run's alert keeps (it names the first few, counts the rest).
KEYS_KEPT = 100


@dataclass
class ReconcileOptions(DiffOptions):
    """Diff options, plus whether to repair (the default is a dry run that changes nothing)."""

    repair: bool = False
    #: Hears the keys of each repaired chunk once committed, before the re-comparison.
    on_repair_chunk: Callable[[list[Key]], None] | None = None


@dataclass
class ReconcileReport:
    """What a reconciliation found and did; `as_dict` is the `--json` output."""

    run_id: str
    table: str
    action: str
    diff: DiffResult
    repair: RepairOutcome
    #: After a repair: how many differences the re-comparison still found (None: no repair).
    remaining: int | None = None
    #: Their keys (JSON-ready), each with its kind: what a repair could not fix.
    remaining_keys: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    #: Source rows the table's checks reject: held in quarantine, never loaded by a repair.
    held: list[Any] = field(default_factory=list)
    #: Raw differences that vanish once the source row is normalized as the sync loads it.
    normalized: int = 0
    #: The table's key columns, which the key problems name.
    key: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No differences remain: none were found, or the repair fixed them all."""
        if self.action == "repair":
            return self.remaining == 0 and self.diff.complete
        return self.diff.differences == 0 and self.diff.complete

    def as_dict(self, keys: bool = True) -> dict[str, Any]:
        """What was found and done; without `keys`, the lists of differing keys are empty
        (`json_parts` writes them)."""
        d = self.diff
        missing, extra, changed = (d.missing, d.extra, d.changed) if keys else ([], [], [])
        return {
            "run_id": self.run_id,
            "table": self.table,
            "action": self.action,
            "mode": d.mode,
            "counts": {
                "missing": len(d.missing),
                "extra": len(d.extra),
                "changed": len(d.changed),
                "held": len(self.held),
                "normalized": self.normalized,
            },
            "missing": [json_key(r.key) for r in missing],
            "extra": [json_key(r.key) for r in extra],
            "changed": [{"key": json_key(r.key), "columns": list(r.columns)} for r in changed],
            "held": [json_key(k) for k in self.held],
            "rows_compared": d.rows_compared,
            "source_rows": d.source_rows,
            "target_rows": d.target_rows,
            "coverage": round(d.coverage, 6),
            "complete": d.complete,
            "stopped_by": d.stopped_by,
            "key_problems": [p.as_dict(self.key) for p in d.key_problems],
            "buckets": d.buckets,
            "buckets_differing": d.buckets_differing,
            "repair": {
                "upserted": self.repair.upserted,
                "deleted": self.repair.deleted,
                "skipped": self.repair.skipped,
                "applied": self.action == "repair",
                "remaining": self.remaining,
                "remaining_keys": self.remaining_keys,
                "backwards": [
                    {"key": json.loads(k), "reason": r} for k, r in self.repair.backwards.items()
                ],
            },
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
        }

    def to_json(self) -> str:
        return "".join(self.json_parts())

    def json_parts(self) -> Iterator[str]:
        """`as_dict` as JSON text, piece by piece: the lists of differing keys are written many
        keys a piece (`diff_json`), never held as a million small lists beside the differences
        themselves."""
        d = self.diff
        # Each list comes in pieces of many keys, themselves joined by `, `.
        keys: dict[str, Callable[[], Iterator[str]]] = {
            "missing": lambda: key_pieces(d.missing),
            "extra": lambda: key_pieces(d.extra),
            "changed": lambda: changed_pieces(d.changed),
        }
        data = self.as_dict(keys=False)
        yield "{"
        for number, (name, value) in enumerate(data.items()):
            yield f"{', ' if number else ''}{json.dumps(name)}: "
            if name not in keys:
                yield json.dumps(value)
                continue
            yield "["
            for index, item in enumerate(keys[name]()):
                yield f"{', ' if index else ''}{item}"
            yield "]"
        yield "}"


def shown_result(config: PipewardenConfig, name: str, result: dict[str, Any]) -> dict[str, Any]:
    """A report's `as_dict` as a Prefect artifact, a flow's log and its result show it: keys
    holding customer data (a pii key column, emails, phones) as hash prefixes (`config.pii`)."""
    shown = _shown_keys(config, name)

    def keyed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**r, "key": shown.key(r["key"])} for r in rows]

    repair = result["repair"]
    return {
        **result,
        "missing": [shown.key(k) for k in result["missing"]],
        "extra": [shown.key(k) for k in result["extra"]],
        "held": [shown.key(k) for k in result["held"]],
        "changed": keyed(result["changed"]),
        "key_problems": [_shown_problem(p, shown) for p in result["key_problems"]],
        "repair": {
            **repair,
            "remaining_keys": keyed(repair["remaining_keys"]),
            "backwards": keyed(repair["backwards"]),
        },
    }


def _shown_keys(config: PipewardenConfig, name: str) -> ShownKeys:
    """How the table's keys may be shown, with the warehouse's salt (kept when made here)."""
    table = config.tables[name]
    with connect(cached_engine(config.warehouse.url, config.timeouts.engine())) as conn:
        shown = ShownKeys(redactor(conn, pii_columns(table)), table.primary_key)
        conn.commit()
    return shown


def _shown_problem(problem: dict[str, Any], shown: ShownKeys) -> dict[str, Any]:
    """A key problem's sample and message (which quotes the sample as JSON) with keys hidden."""
    message = problem["message"]
    for key in problem["sample"]:
        message = message.replace(json.dumps(key), json.dumps(shown.key(key)))
    sample = [shown.key(k) for k in problem["sample"]]
    return {**problem, "sample": sample, "message": shown.text(message)}


def reconcile_table(
    config: PipewardenConfig, name: str, options: ReconcileOptions | None = None
) -> ReconcileReport:
    """Compare one table with its source, repair it if asked, and record the run."""
    options = options or ReconcileOptions()
    warehouse = cached_engine(config.warehouse.url, config.timeouts.engine())
    ensure_tables(warehouse)
    run = ReconcileRun(
        run_id=str(uuid4()),
        table_name=name,
        started_at=datetime.now(UTC),
        action="repair" if options.repair else "dry-run",
        keys_only=options.keys_only,
        key_range=":".join(v or "" for v in options.key_range) if options.key_range else None,
    )
    partial = bool(options.key_range or options.columns)

    report: ReconcileReport | None = None

    def run_alerts(conn: sa.Connection) -> None:
        """What the outcome causes, in its transaction: its metrics, and its alerts."""
        write_metrics(conn, outcome_metrics(run))
        remaining = _differing_keys(report)
        table = config.tables[name]
        shown = ShownKeys(redactor(conn, pii_columns(table)), table.primary_key)
        findings = [from_reconcile_run(run, partial, remaining, shown)]
        if report is not None and report.repair.backwards:
            findings.append(repaired_backwards(run, report.repair.backwards, shown))
        raise_alerts(conn, config, findings)

    start_run(warehouse, run)
    try:
        report = _reconcile(config, name, options, run)
    except Exception as error:
        message = redact_secrets(f"{type(error).__name__}: {error}")
        finish_run(warehouse, run, "failed", message, also=run_alerts)
        raise
    run.timings = report.timings
    status = "clean" if report.clean else "differences"
    # The run's record says why it could not compare every row (the dashboards show `error`).
    problems = "; ".join(run.key_problems) or None
    finish_run(warehouse, run, status, problems, also=run_alerts)
    return report


def outcome_metrics(run: ReconcileRun) -> list[MetricPoint]:
    """`reconcile_outcome` (0 clean, 1 differences, 2 failed) labelled with the status and what
    ran, and the run's counts as series of their own (`reconcile_missing`, …), for Grafana."""
    values: dict[str, float] = {
        "rows_compared": run.rows_compared,
        "missing": run.missing,
        "extra": run.extra,
        "changed": run.changed,
        "repaired": run.repaired,
    }
    if run.remaining is not None:
        values["remaining"] = run.remaining
    if run.coverage is not None:
        values["coverage"] = run.coverage
    if run.duration_seconds is not None:
        values["duration_seconds"] = run.duration_seconds
    labels = {"action": run.action, "run_id": run.run_id}
    if run.mode:
        labels["mode"] = run.mode
    return outcome_points(
        run.table_name, "reconcile", run.status, values, run.finished_at, **labels
    )


def _reconcile(
    config: PipewardenConfig, name: str, options: ReconcileOptions, run: ReconcileRun
) -> ReconcileReport:
    """Diff, settle through the table's gate, record, then repair and compare again (or, in a
    dry run, say what a repair would do)."""
    plan = plan_table(config, name, options.columns, options.keys_only)
    result = diff_plan(plan, options)
    timings = dict(result.timings)
    began = time.perf_counter()
    settled = _settle(plan, config.table(name), result)
    timings["settle"] = time.perf_counter() - began
    _record_diffs(config, run, name, settled.groups, result)
    if options.repair and settled.count:
        diffs = list(settled.diffs)
        outcome, left = _repair(config, plan, run, diffs, result, options, timings)
        remaining: int | None = len(left)
    else:
        upserts, deletes = len(result.missing) + len(result.changed), len(result.extra)
        outcome = RepairOutcome() if options.repair else plan_repair(upserts, deletes)
        left, remaining = [], 0 if options.repair else None
    _fill_run(run, result, plan.key, outcome if options.repair else None, remaining)
    if result.key_problems:  # their text is the run's error, which dashboards and alerts show
        shown = _shown_keys(config, name)
        run.key_problems = [
            replace(p, sample=[tuple(shown.key(json_key(k))) for k in p.sample]).describe(plan.key)
            for p in result.key_problems
        ]
    return ReconcileReport(
        run_id=run.run_id,
        table=name,
        action=run.action,
        diff=result,
        repair=outcome,
        remaining=remaining,
        remaining_keys=[{"key": json_key(d.key), "diff": d.kind} for d in left],
        timings=timings,
        held=[d.key for d in settled.held],
        normalized=settled.normalized,
        key=plan.key,
    )


def _differing_keys(report: ReconcileReport | None) -> list[dict[str, Any]]:
    """The keys an alert names: what a repair left, or a sample of what a dry run found."""
    if report is None:
        return []
    if report.action == "repair":
        return report.remaining_keys
    d = report.diff
    found = islice(chain(d.missing, d.extra, d.changed), KEYS_KEPT)
    return [{"key": json_key(d.key), "diff": d.kind} for d in found]


def _settle(plan: TablePlan, table_config: TableConfig, result: DiffResult) -> Settled:
    """Keep the differences loading the normalized source would change (`settle.py`)."""
    settled = settle(plan, table_config, [result.missing, result.extra, result.changed])
    result.missing, result.extra, result.changed = settled.groups
    return settled


def _record_diffs(
    config: PipewardenConfig,
    run: ReconcileRun,
    name: str,
    groups: Iterable[Sequence[RowDiff]],
    result: DiffResult,
) -> None:
    """Every difference, and the source keys that could not be compared, in the warehouse."""
    warehouse = cached_engine(config.warehouse.url, config.timeouts.engine())
    unmatched = (
        DiffRecord(p.kind[:10], json_key(k), [], None, None)
        for p in result.key_problems
        for k in p.sample
    )
    write_diff_frames(warehouse, run.run_id, name, diff_frames(groups, unmatched))


def _repair(
    config: PipewardenConfig,
    plan: TablePlan,
    run: ReconcileRun,
    diffs: list[RowDiff],
    result: DiffResult,
    options: ReconcileOptions,
    timings: dict[str, float],
) -> tuple[RepairOutcome, list[RowDiff]]:
    """Repair, then compare the repaired ranges again, row by row, and settle them like the
    first pass; the audit then keeps only what changed. Returns what still differs."""
    table_config = config.table(plan.name)
    began = time.perf_counter()
    gate = table_gate(plan, table_config)
    outcome = repair(plan, diffs, run.run_id, gate=gate, on_chunk=options.on_repair_chunk)
    timings["repair"] = time.perf_counter() - began
    again = recheck(plan, result.spans)
    left = list(settle(plan, table_config, [again.changed, again.missing, again.extra]).diffs)
    warehouse = cached_engine(config.warehouse.url, config.timeouts.engine())
    settle_audit(warehouse, run.run_id, plan.name, outcome, left)
    timings["recheck"] = time.perf_counter() - began - timings["repair"]
    return outcome, left


def _fill_run(
    run: ReconcileRun,
    result: DiffResult,
    key: list[str],
    outcome: RepairOutcome | None,
    remaining: int | None,
) -> None:
    """The run's record: what was compared, found and (with `outcome`) repaired."""
    run.mode = result.mode
    run.rows_compared = result.rows_compared
    run.coverage = result.coverage
    run.complete = result.complete
    run.stopped_by = result.stopped_by
    run.missing, run.extra, run.changed = (
        len(result.missing),
        len(result.extra),
        len(result.changed),
    )
    run.repaired = outcome.repaired if outcome is not None else 0
    run.remaining = remaining
    run.key_problems = [p.describe(key) for p in result.key_problems]
