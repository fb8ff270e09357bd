"""`pipewarden check` runs freshness and anomaly checks; `pipewarden status` shows every table."""

from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer
from rich.table import Table

from checks.freshness import describe
from pipewarden.cli.common import EXIT_FOUND, ConfigOption, configured, console, fail
from pipewarden.records.metrics import FAILING, CheckResult, worst_status

COLOURS = {
    "ok": "green",
    "warn": "yellow",
    "error": "red",
    "anomaly": "magenta",
    "insufficient_history": "dim",
}


def check(
    tables: Annotated[
        list[str] | None, typer.Argument(help="Tables to check (default: all).")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Check freshness and anomalies, record the results; exit 1 if any check fails."""
    from checks.monitor import run_checks

    with configured(config) as cfg:
        unknown = [n for n in tables or [] if n not in cfg.tables]
        if unknown:
            raise fail(
                f"unknown table(s): {', '.join(unknown)} (configured: {', '.join(cfg.tables)})"
            )
        try:
            results = run_checks(cfg, tables or None)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            raise fail(f"{type(error).__name__}: {error}") from None
    console.print(results_view(results))
    failing = [r for r in results if r.failing]
    if failing:
        console.print(f"[bold]{len(failing)} of {len(results)} checks need attention.[/]")
        raise typer.Exit(EXIT_FOUND)
    console.print(f"All {len(results)} checks ok.")


def status(config: ConfigOption = None) -> None:
    """Every table's freshness, staleness, latency and last check, coloured by its SLA."""
    from checks.monitor import table_states
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.tables import ensure_tables

    with configured(config) as cfg:
        now = datetime.now(UTC)
        try:
            engine = cached_engine(cfg.warehouse.url)
            ensure_tables(engine)
            states = table_states(engine, cfg, list(cfg.tables), now)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            raise fail(f"{type(error).__name__}: {error}") from None
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


def results_view(results: list[CheckResult]) -> Table:
    """Check results as a table, one row per table and check; quiet column monitors as one."""
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
    if not results:
        return "never"
    worst = worst_status(r.status for r in results)
    failing = [r.check for r in results if r.status in FAILING]
    ago = describe(now - results[0].checked_at)
    text = f"[{COLOURS.get(worst, '')}]{worst}[/] {ago} ago"
    return text + (f" ({', '.join(failing)})" if failing else "")


def _seconds_text(value: float | None) -> str:
    if value is None:
        return "-"
    return describe(timedelta(seconds=value))


def _number(value: float | None) -> str:
    if value is None:
        return ""
    if abs(value) >= 100 or value == int(value):
        return f"{value:,.0f}"
    return f"{value:.3g}"
