"""`pipewarden check` runs freshness and anomaly checks; `pipewarden status` shows every table."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli.common import (
    EXIT_FOUND,
    ConfigOption,
    JsonOption,
    configured,
    console,
    fail,
    print_json,
)

if TYPE_CHECKING:
    from rich.table import Table

    from pipewarden.checks.monitoring.state import TableState
    from pipewarden.records.metrics import CheckResult

COLOURS = {
    "ok": "green",
    "warn": "yellow",
    "error": "red",
    "anomaly": "magenta",
    "insufficient_history": "dim",
}


def check(
    tables: Annotated[
        list[str] | None,
        typer.Argument(help="Tables to check (default: all).", metavar="TABLE"),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Check freshness and anomalies, record the results; exit 1 if any check fails."""
    from pipewarden.checks.monitoring.run import run_checks

    with configured(config, deliver=True) as cfg:
        unknown = [n for n in tables or [] if n not in cfg.tables]
        if unknown:
            raise fail(
                f"unknown table(s): {', '.join(unknown)} (configured: {', '.join(cfg.tables)})"
            )
        try:
            results = run_checks(cfg, tables or None)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            raise fail(f"{type(error).__name__}: {error}") from None
    counts = check_counts(results)
    if json_output:
        print_json({"results": [result_dict(r) for r in results], "counts": counts})
    else:
        console.print(results_view(results))
        waiting = (
            f", {counts['waiting']} waiting for history (too few points to judge yet)"
            if counts["waiting"]
            else ""
        )
        if counts["failing"]:
            console.print(
                f"[bold]{counts['failing']} of {counts['total']} checks need attention[/]; "
                f"{counts['ok']} ok{waiting}.",
                highlight=False,
            )
        elif counts["ok"] == counts["total"]:
            console.print(f"All {counts['total']} checks ok.")
        else:
            console.print(f"{counts['ok']} of {counts['total']} checks ok{waiting}.")
    if counts["failing"]:
        raise typer.Exit(EXIT_FOUND)


def check_counts(results: list[CheckResult]) -> dict[str, int]:
    """Failing (warn, error, anomaly), ok, and waiting for history: never counted as ok."""
    from pipewarden.records.evidence import INSUFFICIENT

    failing = sum(r.failing for r in results)
    waiting = sum(r.status == INSUFFICIENT for r in results)
    return {
        "total": len(results),
        "ok": len(results) - failing - waiting,
        "waiting": waiting,
        "failing": failing,
    }


def result_dict(r: CheckResult) -> dict[str, object]:
    """One check result as JSON-ready data (the `check --json` shape)."""
    return {
        "table": r.table_name,
        "check": r.check,
        "status": r.status,
        "failing": r.failing,
        "observed": r.observed,
        "observed_at": r.observed_at,
        "expected_low": r.expected_low,
        "expected_high": r.expected_high,
        "score": r.score,
        "method": r.method,
        "reason": r.reason,
        "history_size": r.history_size,
        "checked_at": r.checked_at,
        "run_id": r.run_id,
    }


def status(config: ConfigOption = None, json_output: JsonOption = False) -> None:
    """Every table's (and the profile table's) freshness, staleness, latency and last check,
    coloured by its SLA; exit 1 if any table is over its SLA."""
    from pipewarden.checks.monitoring.state import table_states
    from pipewarden.config.durations import describe
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.evidence import Severity
    from pipewarden.records.migrate import ensure_tables

    with configured(config, checks=False) as cfg:
        now = datetime.now(UTC)
        try:
            engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
            ensure_tables(engine)
            states = table_states(engine, cfg, list(cfg.tables), now)
            if cfg.profiles is not None:  # the profile table, watched like the others
                from pipewarden.profiles.state import profile_state

                states[cfg.profiles.table] = profile_state(engine, cfg, now)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            raise fail(f"{type(error).__name__}: {error}") from None
    over = [n for n, state in states.items() if Severity.of(state.freshness.status) > Severity.OK]
    if json_output:
        print_json({"tables": [state_dict(s, now) for s in states.values()], "over_sla": over})
        if over:
            raise typer.Exit(EXIT_FOUND)
        return
    from rich.table import Table

    view = Table(title="status", title_justify="left")
    for column in ("table", "SLA", "freshness", "warn / error", "staleness", "last sync"):
        view.add_column(column)
    view.add_column("latency p95", justify="right")
    view.add_column("last check")
    for name, state in states.items():
        verdict = state.freshness
        colour = COLOURS.get(verdict.status, "")
        sla = " / ".join(
            describe(t) if t is not None else "-" for t in (verdict.warn_after, verdict.error_after)
        )
        view.add_row(
            f"[{colour}]{name}[/]",
            f"[{colour}]{verdict.status}[/]",
            f"[{colour}]{describe(verdict.age) if verdict.age is not None else 'no data'}[/]",
            sla,
            describe(state.staleness) if state.staleness is not None else "never",
            state.last_run_status or "-",
            _seconds_text(state.latency_p95_seconds),
            _last_check(state.last_checks, now),
        )
    console.print(view)
    if over:
        console.print(f"[bold]Over their SLA:[/] {', '.join(over)}", highlight=False)
        raise typer.Exit(EXIT_FOUND)


def state_dict(state: TableState, now: datetime) -> dict[str, object]:
    """One table's state as JSON-ready data (the `status --json` shape); durations in seconds."""
    from pipewarden.records.evidence import worst_status

    verdict = state.freshness
    checks = state.last_checks
    return {
        "table": state.name,
        "status": verdict.status,
        "reason": verdict.reason,
        "newest": verdict.newest,
        "age_seconds": _seconds(verdict.age),
        "warn_after_seconds": _seconds(verdict.warn_after),
        "error_after_seconds": _seconds(verdict.error_after),
        "last_success": state.last_success,
        "staleness_seconds": _seconds(state.staleness),
        "last_sync": state.last_run_status,
        "latency_p95_seconds": state.latency_p95_seconds,
        "last_check": {
            "status": worst_status(r.status for r in checks),
            "checked_at": checks[0].checked_at,
            "failing": [r.check for r in checks if r.failing],
        }
        if checks
        else None,
    }


def _seconds(span: timedelta | None) -> float | None:
    return None if span is None else span.total_seconds()


def results_view(results: list[CheckResult]) -> Table:
    """Check results as a table, one row per table and check; quiet column monitors as one."""
    from rich.table import Table

    view = Table(title="checks", title_justify="left")
    for column in ("table", "check", "status", "observed", "expected", "reason"):
        view.add_column(column, justify="right" if column == "observed" else "left")
    quiet: dict[str, int] = {}
    for r in results:
        if r.check.startswith(("drift:", "null_rate:")) and r.status == "ok":
            quiet[r.table_name] = quiet.get(r.table_name, 0) + 1
            continue
        colour = COLOURS.get(r.status, "")
        expected = (
            f"{_number(r.expected_low)} – {_number(r.expected_high)}"
            if r.expected_high is not None
            else ""
        )
        view.add_row(
            r.table_name,
            r.check,
            f"[{colour}]{r.status}[/]",
            _number(r.observed),
            expected,
            r.reason or "",
        )
    for name, n in quiet.items():
        view.add_row(name, "columns", "[green]ok[/]", "", "", f"{n} drift and null-rate checks ok")
    return view


def _last_check(results: tuple[CheckResult, ...], now: datetime) -> str:
    from pipewarden.config.durations import describe
    from pipewarden.records.evidence import worst_status

    if not results:
        return "never"
    worst = worst_status(r.status for r in results)
    failing = [r.check for r in results if r.failing]
    ago = describe(now - results[0].checked_at)
    text = f"[{COLOURS.get(worst, '')}]{worst}[/] {ago} ago"
    return text + (f" ({', '.join(failing)})" if failing else "")


def _seconds_text(value: float | None) -> str:
    from pipewarden.config.durations import describe

    if value is None:
        return "-"
    return describe(timedelta(seconds=value))


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"
