"""The `pipewarden` command: one sub-command per module in this folder.

Exit codes, the same for every command: 0 all good; 1 the data needs attention (a table over
its SLA, a failing check, differences, held rows, open incidents); 2 pipewarden could not do its
job (a bad configuration, an unreachable database, a failed sync).
"""

import importlib
from collections.abc import Iterator, MutableMapping
from typing import Annotated, Any, cast

import typer
import typer.core
import typer.main
import typer.models

#: Every command: the module that defines it and its name there (a function, or the typer app of
#: a group), in the order `--help` lists them. A module is imported when its command runs or a
#: help text lists it, so one command's start never pays for the others' imports.
COMMANDS: dict[str, tuple[str, str]] = {
    "sync": ("pipewarden.cli.sync", "sync"),
    "reconcile": ("pipewarden.cli.reconcile", "reconcile"),
    "check": ("pipewarden.cli.check", "check"),
    "status": ("pipewarden.cli.check", "status"),
    "backtest": ("pipewarden.cli.backtest", "backtest"),
    "demo": ("pipewarden.cli.demo", "demo"),
    "upgrade": ("pipewarden.cli.upgrade", "upgrade"),
    "quarantine": ("pipewarden.cli.quarantine", "quarantine_app"),
    "dashboards": ("pipewarden.cli.dashboards", "dashboards_app"),
    "baseline": ("pipewarden.cli.baseline", "baseline_app"),
    "alerts": ("pipewarden.cli.alerts", "alerts_app"),
    "events": ("pipewarden.cli.events", "events_app"),
    "profiles": ("pipewarden.cli.profiles", "profiles_app"),
    "serve": ("pipewarden.cli.serve", "serve"),
    "ready": ("pipewarden.cli.ready", "ready"),
    "exporter": ("pipewarden.cli.exporter", "exporter"),
}


_Command = typer.core.TyperCommand | typer.core.TyperGroup


class _CommandsOnFirstUse(MutableMapping[str, _Command]):
    """The group's commands by name, each built (its module imported) when first looked up."""

    def __init__(self, group: typer.core.TyperGroup) -> None:
        self._group = group
        self._built: dict[str, _Command] = {}

    def __getitem__(self, name: str) -> _Command:
        if name not in self._built:
            module, attr = COMMANDS[name]
            target = getattr(importlib.import_module(module), attr)
            command: _Command
            if isinstance(target, typer.Typer):
                command = typer.main.get_group(target)
            else:
                built = typer.main.get_command_from_info(
                    typer.models.CommandInfo(name=name, callback=target),
                    pretty_exceptions_short=app.pretty_exceptions_short,
                    rich_markup_mode=self._group.rich_markup_mode,
                )
                command = cast(typer.core.TyperCommand, built)
            command.name = name
            self._built[name] = command
        return self._built[name]

    def __setitem__(self, name: str, command: _Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        return iter([*COMMANDS, *(n for n in self._built if n not in COMMANDS)])

    def __len__(self) -> int:
        return len(set(COMMANDS) | set(self._built))


class _Commands(typer.core.TyperGroup):
    """pipewarden's top-level group: its commands are listed by name and built when used."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands = cast(Any, _CommandsOnFirstUse(self))


app = typer.Typer(
    name="pipewarden",
    help="Keeps the customer data behind personalized email honest.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=_Commands,
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


def main() -> None:
    from pipewarden.cli.start_up import defer_collections

    defer_collections()
    app()


if __name__ == "__main__":
    main()
