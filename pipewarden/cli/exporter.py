"""`pipewarden exporter`: serve each table's figures to Prometheus on /metrics."""

from typing import Annotated

import typer

from pipewarden.cli.common import ConfigOption, configured, errors, fail


def exporter(
    config: ConfigOption = None,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", metavar="N", min=0, max=65535, help="Port to listen on.")
    ] = 9464,
    cache: Annotated[
        float,
        typer.Option(
            "--cache-seconds",
            metavar="SECONDS",
            min=0,
            help="Scrapes within this time of a read share it (the warehouse is read once).",
        ),
    ] = 5.0,
) -> None:
    """Serve every table's freshness, SLA status, syncs, quarantine, incidents, reconciliation
    and alert outbox as Prometheus metrics on http://HOST:PORT/metrics, until stopped."""
    from pipewarden.serve.exporter import serve
    from pipewarden.serve.heap import settle_heap

    with configured(config, checks=False) as cfg:
        try:
            server, thread = serve(cfg, host, port, cache)
        except OSError as error:  # the port taken, an address not of this host
            raise fail(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    settle_heap()
    errors.print(
        f"serving /metrics on http://{host}:{server.server_port} for {len(cfg.tables)} tables",
        highlight=False,
    )
    try:
        thread.join()
    except KeyboardInterrupt:
        server.shutdown()
