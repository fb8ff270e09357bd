"""The `pipewarden` command: one sub-command per module in this folder."""

import typer

from pipewarden.cli.alerts import alerts_app
from pipewarden.cli.backtest import backtest
from pipewarden.cli.check import check, status
from pipewarden.cli.dashboards import dashboards_app
from pipewarden.cli.demo import demo
from pipewarden.cli.quarantine import quarantine_app
from pipewarden.cli.reconcile import reconcile
from pipewarden.cli.sync import sync

app = typer.Typer(
    name="pipewarden",
    help="Keeps the customer data behind personalized email honest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app.command()(sync)
app.add_typer(quarantine_app, name="quarantine")
app.add_typer(dashboards_app, name="dashboards")
app.command()(reconcile)
app.command()(check)
app.command()(status)
app.command()(backtest)
app.add_typer(alerts_app, name="alerts")
app.command()(demo)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
