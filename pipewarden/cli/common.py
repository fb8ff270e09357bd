"""What every command shares: the --config option, error display, exit codes."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

import typer
from rich.console import Console

from pipewarden.config import ConfigError, PipewardenConfig, load_config
from pipewarden.db.urls import redact_secrets

console = Console()
errors = Console(stderr=True)

ConfigOption = Annotated[
    str | None,
    typer.Option(
        "--config",
        "-c",
        help="Configuration file (default: $PIPEWARDEN_CONFIG or ./pipewarden.yaml).",
    ),
]

EXIT_OK, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def fail(message: str, code: int = EXIT_ERROR) -> typer.Exit:
    """Print an error (secrets hidden) and return the exit to raise."""
    errors.print(f"[bold red]error:[/] {redact_secrets(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


@contextmanager
def configured(path: str | None) -> Iterator[PipewardenConfig]:
    """Load the configuration, turning a bad file into a clear error and exit code 2."""
    from checks.gate import verify_schema_refs

    try:
        config = load_config(path)
        verify_schema_refs(config)
    except ConfigError as error:
        raise fail(str(error)) from None
    yield config
