"""`pipewarden events …`: the webhook receiver."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from pipewarden.cli.common import EXIT_FOUND, EXIT_OK, ConfigOption, configured, console, fail

if TYPE_CHECKING:
    from pipewarden.config import PipewardenConfig

events_app = typer.Typer(
    help="The webhook receiver of the configured streams.", no_args_is_help=True
)


@events_app.command("serve")
def serve(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, metavar="N", help="Port to listen on.")
    ] = 8787,
    metrics_every: Annotated[
        float,
        typer.Option(
            "--metrics-every", min=1, metavar="SECONDS", help="How often metrics are written."
        ),
    ] = 10.0,
) -> None:
    """Receive the streams' webhooks: POST /events/STREAM, GET /health; stop with Ctrl-C."""
    from pipewarden.config import ConfigError

    with configured(config) as loaded:
        if not loaded.streams:
            raise fail("the configuration declares no streams (streams: in pipewarden.yaml)")
        from pipewarden.events.serve import serve as run

        try:
            run(loaded, host, port, metrics_every)
        except ConfigError as error:
            raise fail(str(error)) from None


@events_app.command("check")
def check(
    streams: Annotated[
        list[str] | None, typer.Argument(help="Streams to check (default: all).", metavar="STREAM")
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Freshness and anomalies of the streams, recorded and alerted like tables' checks.

    Exits 1 when a stream needs attention (stale, an anomaly).
    """
    from rich.table import Table

    with configured(config, deliver=True) as loaded:
        from pipewarden.events.watch import check_streams

        try:
            results = check_streams(loaded, streams)
        except ValueError as error:
            raise fail(str(error)) from None
    table = Table("stream", "check", "status", "reason")
    for r in results:
        table.add_row(r.table_name, r.check, r.status, (r.reason or "")[:120])
    console.print(table)
    if any(r.failing for r in results):
        raise typer.Exit(EXIT_FOUND)


def reconcile_stream(
    config: PipewardenConfig,
    name: str,
    repair: bool,
    since: str | None,
    until: str | None,
    json_output: bool,
) -> None:
    """`pipewarden reconcile STREAM`: print the audit, exit 0 when nothing remains, else 1."""
    from datetime import datetime

    from pipewarden.cli.common import print_json
    from pipewarden.config.urls import redact_secrets
    from pipewarden.events.delivery import parse_time
    from pipewarden.events.source_audit import reconcile_stream as audit_stream

    try:
        bounds: list[datetime | None] = [
            None if t is None else parse_time(t) for t in (since, until)
        ]
    except ValueError as error:
        raise fail(f"--since/--until: {error}: write ISO 8601, e.g. 2026-12-04T10:00:00Z") from None
    try:
        audit = audit_stream(config, name, since=bounds[0], until=bounds[1], repair=repair)
    except Exception as error:  # noqa: BLE001 - any failure is reported, exit code 2
        raise fail(redact_secrets(f"{type(error).__name__}: {error}")) from None
    if json_output:
        print_json(audit.as_dict())
    else:
        console.print(
            f"reconcile stream {name} ({'repair' if repair else 'dry run'}) "
            f"{audit.since:%Y-%m-%d %H:%M:%S} .. {audit.until:%Y-%m-%d %H:%M:%S} UTC: "
            f"{audit.source_keys} source keys, {len(audit.missed)} missed, "
            f"{len(audit.unexpected)} unexpected, {len(audit.backfilled)} backfilled",
            highlight=False,
        )
        for kind in ("missed", "unexpected", "backfilled"):
            for key in getattr(audit, kind)[:20]:
                console.print(f"  {kind} {key}", highlight=False)
    raise typer.Exit(EXIT_OK if audit.remaining == 0 else EXIT_FOUND)
