"""What every command shares: the --config option, error display, exit codes.

The CLI modules import only typer at load time; what a command needs (rich, the configuration
models, SQLAlchemy, polars, scipy, …) is imported inside it, so `pipewarden --help` and a light
command such as `status --json` never pay for the heavy ones.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer
import typer.core

if TYPE_CHECKING:
    from rich.console import Console

    from pipewarden.config import PipewardenConfig


def _value_label(param: typer.core.TyperOption, ctx: object = None) -> str | None:
    """What an option's value is, in the user's words (its metavar), instead of typer's type
    label (`<bool>`, `<list[str]>`, `TEXT`); a flag takes no value and shows none."""
    if param.metavar is not None:
        return param.metavar
    if param.is_flag or param.count:
        return None
    return (param.name or "value").upper()


def _no_label(param: typer.core.TyperArgument, ctx: object = None) -> str | None:
    """An argument is shown by its name (its metavar) already: no second type label."""
    return None


# Typer has no setting for this; its help formatters ask these two methods for the label.
typer.core.TyperOption.display_type_rich = _value_label  # type: ignore[method-assign,assignment]
typer.core.TyperArgument.display_type_rich = _no_label  # type: ignore[method-assign,assignment]


class _ConsoleOnFirstUse:
    """A rich Console made when first used: a command that prints JSON never loads rich.

    Stands in for the Console everywhere, handed to rich as well (a progress bar enters it)."""

    def __init__(self, **options: Any) -> None:
        object.__setattr__(self, "_options", options)
        object.__setattr__(self, "_made", None)

    def _console(self) -> Console:
        if self._made is None:
            from rich.console import Console

            object.__setattr__(self, "_made", Console(**self._options))
        return cast("Console", self._made)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._console(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(self._console(), name, value)

    def __enter__(self) -> Console:
        return self._console().__enter__()

    def __exit__(self, *exc: object) -> None:
        self._console().__exit__(*exc)  # type: ignore[arg-type]


console = cast("Console", _ConsoleOnFirstUse())
errors = cast("Console", _ConsoleOnFirstUse(stderr=True))

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        metavar="PATH",
        help="Configuration file (default: $PIPEWARDEN_CONFIG or ./pipewarden.yaml).",
    ),
]

JsonOption = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (its shape is in the README).")
]

#: 0: all good; 1: the data needs attention; 2: pipewarden could not do its job.
EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def print_json(data: object) -> None:
    """One JSON object on stdout: datetimes as ISO 8601, anything else unusual as text."""
    import json
    from datetime import date

    def plain(value: object) -> object:
        return value.isoformat() if isinstance(value, date) else str(value)

    print(json.dumps(data, default=plain, ensure_ascii=False))


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print an error (secrets hidden) and return the exit to raise."""
    from pipewarden.config.urls import redact_secrets

    errors.print(f"[bold red]error:[/] {redact_secrets(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def configured(
    path: str | None, checks: bool = True, deliver: bool = False
) -> Iterator[PipewardenConfig]:
    """Load the configuration, turning a bad file into a clear error and exit code 2.

    `checks`: also import every table's schema and check its normalize steps (pandera); the
    commands that never validate rows (`status`, `alerts`, `quarantine list`) skip it.
    `deliver`: the command's alerts go out when its work is done, whatever its outcome (a
    failed sync raises one): see `deliver_alerts`.
    """
    from pipewarden.config import ConfigError, load_config

    try:
        config = load_config(path)
        if checks:
            from pipewarden.checks.validation.schema_gate import verify_schema_refs

            verify_schema_refs(config)
    except ConfigError as error:
        raise fail(str(error)) from None
    from pipewarden.cli.start_up import settle_start_up

    settle_start_up()
    try:
        yield config
    except Exception:  # typer.Exit too: the exit code is the work's, delivery comes first
        if deliver:
            deliver_alerts(config)
        raise
    if deliver:
        deliver_alerts(config)


def deliver_alerts(config: PipewardenConfig) -> None:
    """Deliver the outbox (what the command raised, after what waited before it) to Slack.

    Alerts never block data and never change an exit code: without a `slack:` section nothing
    is tried; when alerts are left waiting (no usable token, Slack down) the command says why
    once, as a warning on stderr. At least once: a post whose answer is lost (a time-out after
    Slack took it) is sent again by a later delivery.
    """
    if config.slack is None:
        return
    from pipewarden.alerts.deliver import deliver_pending, undelivered_warning

    try:
        warning = undelivered_warning(deliver_pending(config).as_dict())
    except Exception as error:  # noqa: BLE001 - the warehouse out of reach: the alerts wait
        warning = (
            f"alert delivery failed, alerts stay in the outbox: {type(error).__name__}: {error}"
        )
    if warning is not None:
        from pipewarden.config.urls import redact_secrets

        errors.print(
            f"[yellow]warning:[/] {redact_secrets(warning)}", highlight=False, soft_wrap=True
        )
