"""`pipewarden serve`: the event receiver and the send-time profile API together."""

from __future__ import annotations

from typing import Annotated, Literal

import typer

from pipewarden.cli.common import ConfigOption, configured, fail


def serve(
    config: ConfigOption = None,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            metavar="PART",
            help="Serve one part: receiver (POST /events/…) or profiles (GET /profiles/…).",
        ),
    ] = None,
    host: Annotated[str, typer.Option("--host", metavar="HOST", help="Address to listen on.")] = (
        "127.0.0.1"
    ),
    port: Annotated[
        int, typer.Option("--port", min=1, max=65535, metavar="N", help="Port to listen on.")
    ] = 8787,
) -> None:
    """Serve the receiver (when streams are declared) and GET /profiles/ID (when profiles are).

    The profile API needs profiles.api.token; stop with Ctrl-C.
    """
    parts: set[Literal["receiver", "profiles"]]
    if only is None:
        parts = set()
    elif only in ("receiver", "profiles"):
        parts = {only}  # type: ignore[arg-type]
    else:
        raise fail(f"--only: {only!r} is not a part (receiver or profiles)")
    with configured(config) as loaded:
        if not parts:
            parts = {"receiver"} if loaded.streams else set()
            if loaded.profiles is not None:
                parts.add("profiles")
        if not parts:
            raise fail("the configuration declares neither streams nor profiles")
        from pipewarden.serve.together import serve as run

        try:
            run(loaded, parts, host, port)
        except ValueError as error:
            raise fail(str(error)) from None
        except SystemExit as error:
            if error.code != 3:  # uvicorn's own: it could not start (its reason printed above)
                raise
            raise fail(f"cannot serve on {host}:{port}") from None
