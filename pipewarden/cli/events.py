"""`pipewarden events …`: the webhook receiver."""

from typing import Annotated

import typer

from pipewarden.cli.common import ConfigOption, configured, fail

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

    from pipewarden.cli.common import EXIT_FOUND, console
    from pipewarden.records.metrics import FAILING

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
    if any(r.status in FAILING for r in results):
        raise typer.Exit(EXIT_FOUND)
