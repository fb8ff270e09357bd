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
) -> None:
    """Receive the streams' webhooks: POST /events/STREAM, GET /health; stop with Ctrl-C."""
    from pipewarden.config import ConfigError

    with configured(config) as loaded:
        if not loaded.streams:
            raise fail("the configuration declares no streams (streams: in pipewarden.yaml)")
        from pipewarden.events.serve import serve as run

        try:
            run(loaded, host, port)
        except ConfigError as error:
            raise fail(str(error)) from None
