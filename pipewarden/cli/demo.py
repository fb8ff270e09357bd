"""`pipewarden demo`: the whole path on embedded SQLite, with no configuration at all."""

import contextlib
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
    from pipewarden.cli.check import status
    from pipewarden.demo.show import run_and_show

    demo = run_and_show(folder.resolve(), reset, console)
    console.print()
    # A table over its SLA makes `status` exit 1; in the demo that is part of the show.
    with contextlib.suppress(typer.Exit):
        status(config=str(demo.config_path))
    console.print(
        "\nRun [bold]make demo[/] again to see the next round: the sources change and the sync "
        "copies only the delta."
    )
