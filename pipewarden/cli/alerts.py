"""`pipewarden alerts [send]`: the open incidents and the outbox, and delivering it now."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

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

    from pipewarden.records.alerts import Alert
    from pipewarden.records.incidents import Incident

#: Alert states and kinds (`pipewarden.records.alerts`), here so the module loads without it.
PENDING, SENDING, FAILED = "pending", "sending", "failed"

alerts_app = typer.Typer(
    help="Alerts: open incidents and the outbox (`alerts`), delivery to Slack (`alerts send`).",
    invoke_without_command=True,
)
STATE_COLOURS = {PENDING: "yellow", SENDING: "yellow", FAILED: "red", "sent": "green"}


@alerts_app.callback()
def show(
    ctx: typer.Context,
    config: ConfigOption = None,
    all_: Annotated[
        bool, typer.Option("--all", help="The latest alerts in any state, sent ones too.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Open incidents, and the alerts not delivered yet (or failed), oldest first; exit 1 while
    an incident is open."""
    if ctx.invoked_subcommand is not None:
        return
    from pipewarden.db.engines import cached_engine, connect
    from pipewarden.records.alerts import recent_alerts
    from pipewarden.records.incidents import open_incidents
    from pipewarden.records.migrate import ensure_tables

    with configured(config, checks=False) as cfg:
        engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
        ensure_tables(engine)
        with connect(engine) as conn:
            incidents = list(open_incidents(conn).values())
            states = None if all_ else [PENDING, SENDING, FAILED]
            outbox = recent_alerts(conn, states=states, limit=50 if all_ else 500)
        slack = cfg.slack
    now = datetime.now(UTC)
    waiting = sum(a.state in (PENDING, SENDING) for a in outbox)
    if json_output:
        print_json(
            {
                "incidents": [incident_dict(i) for i in incidents],
                "outbox": [alert_dict(a) for a in outbox],
                "waiting": waiting,
                "failed": sum(a.state == FAILED for a in outbox),
                "slack": slack is not None,
            }
        )
    else:
        console.print(incidents_view(incidents, now) if incidents else "No open incidents.")
        if outbox:
            console.print(outbox_view(outbox, "alerts" if all_ else "outbox (undelivered)"))
        if slack is None:
            console.print(
                f"{waiting} alerts in the outbox; no slack: section in the configuration, so "
                "nothing is delivered (add one, then `pipewarden alerts send`)."
            )
        elif not outbox:
            console.print("The outbox is empty: every alert was delivered.")
    if incidents:
        raise typer.Exit(EXIT_FOUND)


def incident_dict(i: Incident) -> dict[str, Any]:
    """An open incident as JSON-ready data (the `alerts --json` shape)."""
    return {
        "id": i.id,
        "table": i.table_name,
        "check": i.check,
        "status": i.status,
        "severity": i.severity.column,
        "opened_at": i.opened_at,
        "last_seen_at": i.last_seen_at,
        "occurrences": i.occurrences,
    }


def alert_dict(a: Alert) -> dict[str, Any]:
    """An alert of the outbox as JSON-ready data (the `alerts --json` shape)."""
    return {
        "id": a.id,
        "created_at": a.created_at,
        "table": a.evidence.table_name,
        "check": a.evidence.check,
        "kind": a.kind,
        "status": a.evidence.status,
        "reason": a.evidence.reason,
        "channel": a.slack_channel or a.channel,
        "state": a.state,
        "attempts": a.attempts,
        "last_error": a.last_error,
        "sent_at": a.sent_at,
        "run_id": a.evidence.run_id,
    }


@alerts_app.command()
def send(
    config: ConfigOption = None,
    retry_failed: Annotated[
        bool,
        typer.Option("--retry-failed", help="Put alerts Slack refused back in the outbox first."),
    ] = False,
) -> None:
    """Deliver the outbox to Slack now; exit 1 if anything is left undelivered."""
    from pipewarden.alerts.deliver import deliver_pending
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.alerts import requeue_failed
    from pipewarden.records.migrate import ensure_tables

    with configured(config) as cfg:
        engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
        ensure_tables(engine)
        if cfg.slack is None:
            raise fail("no slack: section in the configuration: alerts stay in the outbox")
        if retry_failed:
            with engine.begin() as conn:
                console.print(f"{requeue_failed(conn)} failed alerts back in the outbox.")
        try:
            report = deliver_pending(cfg)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            raise fail(f"{type(error).__name__}: {error}") from None
    console.print(
        f"{len(report.sent)} sent, {len(report.retrying)} to retry, {len(report.failed)} "
        f"refused by Slack, {len(report.waiting)} waiting."
    )
    if report.stopped:
        console.print(f"[yellow]stopped:[/] {report.stopped}", highlight=False)
    if report.retrying or report.failed or report.waiting:
        raise typer.Exit(EXIT_FOUND)


def incidents_view(incidents: list[Incident], now: datetime) -> Table:
    from rich.table import Table

    from pipewarden.config.durations import describe

    view = Table(title="open incidents", title_justify="left")
    for column in ("table", "check", "status", "open for", "verdicts"):
        view.add_column(column, justify="right" if column == "verdicts" else "left")
    for i in incidents:
        view.add_row(
            i.table_name, i.check, i.status, describe(now - i.opened_at), str(i.occurrences)
        )
    return view


def outbox_view(alerts: list[Alert], title: str) -> Table:
    """One row per alert: what it tells, where it goes, and how its delivery went."""
    from rich.table import Table

    from pipewarden.alerts.slack_message import fit_plain
    from pipewarden.records.alerts import OPENED, WORSE

    view = Table(title=title, title_justify="left")
    for column in ("id", "created", "table", "check", "alert", "channel", "state", "why"):
        view.add_column(column, justify="right" if column == "id" else "left")
    for a in alerts:
        colour = STATE_COLOURS.get(a.state, "")
        state = f"[{colour}]{a.state}[/]"
        if a.last_error:
            state += f" ({a.attempts}×: {fit_plain(a.last_error, 60)})"
        view.add_row(
            str(a.id),
            a.created_at.strftime("%Y-%m-%d %H:%M"),
            a.evidence.table_name,
            a.evidence.check,
            f"{a.kind} {a.evidence.status}" if a.kind in (OPENED, WORSE) else a.kind,
            a.slack_channel or a.channel or "(default)",
            state,
            fit_plain(" ".join((a.evidence.reason or "").split()), 90),
        )
    return view
