"""The `pipewarden` command: one sub-command per module in this folder.

Exit codes, the same for every command: 0 all good; 1 the data needs attention (a table over
its SLA, a failing check, differences, held rows, open incidents); 2 pipewarden could not do its
job (a bad configuration, an unreachable database, a failed sync).
"""

from typing import Annotated

import typer

from pipewarden.cli.alerts import alerts_app
from pipewarden.cli.backtest import backtest
from pipewarden.cli.baseline import baseline_app
from pipewarden.cli.check import check, status
from pipewarden.cli.dashboards import dashboards_app
from pipewarden.cli.demo import demo
from pipewarden.cli.events import events_app
from pipewarden.cli.quarantine import quarantine_app
from pipewarden.cli.reconcile import reconcile
from pipewarden.cli.sync import sync
from pipewarden.cli.upgrade import upgrade

app = typer.Typer(
    name="pipewarden",
    help="Keeps the customer data behind personalized email honest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version("pipewarden")
        except PackageNotFoundError:  # running from a source tree that was never installed
            from pipewarden import __version__ as found
        typer.echo(f"pipewarden {found}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Keeps the customer data behind personalized email honest.

    Exit codes: 0 all good, 1 the data needs attention, 2 pipewarden could not do its job.
    """


app.command()(sync)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(dashboards_app, name="dashboards")
app.command()(reconcile)
app.command()(check)
app.command()(status)
app.command()(backtest)
app.add_typer(baseline_app, name="baseline")
app.add_typer(alerts_app, name="alerts")
app.add_typer(events_app, name="events")
app.command()(demo)
app.command()(upgrade)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
