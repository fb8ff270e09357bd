"""`pipewarden demo`: the whole path on embedded SQLite, with no configuration at all."""

import os
from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli.common import console


def demo(
    folder: Annotated[
        Path,
        typer.Option("--folder", metavar="FOLDER", help="Where the demo keeps its databases."),
    ] = Path(".pipewarden/demo"),
    reset: Annotated[bool, typer.Option("--reset", help="Start again from empty sources.")] = False,
) -> None:
    """Create sample sources, run the pipeline through Prefect, and show what it found."""
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from pipewarden.demo.show import run_and_show

    run_and_show(folder.resolve(), reset, console)
