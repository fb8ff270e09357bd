"""Configuration kept in Prefect: the YAML in a Variable or a Secret block, passwords in Secret
blocks. Prefect is imported only when a configuration names one of them."""

from typing import Any, cast

#: `--config`, PIPEWARDEN_CONFIG or a flow's `config_path` naming a Prefect Variable or Secret
#: block that holds the configuration (YAML text, or the mapping itself).
VARIABLE_PREFIX = "prefect-variable:"
SECRET_PREFIX = "prefect-secret:"


class PrefectValueError(LookupError):
    """A Prefect Variable or Secret block that cannot be read; the message names it."""


def is_prefect_reference(where: str) -> bool:
    return where.startswith((VARIABLE_PREFIX, SECRET_PREFIX))


def read_reference(where: str) -> Any:
    """The value of `prefect-variable:NAME` or `prefect-secret:NAME`."""
    if where.startswith(VARIABLE_PREFIX):
        return read_variable(where.removeprefix(VARIABLE_PREFIX))
    return read_secret(where.removeprefix(SECRET_PREFIX))


def read_variable(name: str) -> Any:
    _need_prefect(f"{VARIABLE_PREFIX}{name}")
    from prefect.variables import Variable

    missing = object()
    value = Variable.get(name, default=cast(Any, missing))
    if value is missing:
        raise PrefectValueError(f"Prefect variable {name!r} does not exist")
    return value


def read_secret(name: str) -> Any:
    """A Secret block's value; never logged or put into an error by pipewarden."""
    _need_prefect(f"{SECRET_PREFIX}{name}")
    from prefect.blocks.system import Secret

    try:
        block = cast(Secret, Secret.load(name))  # called outside an event loop: no coroutine
    except ValueError:  # Prefect's "Unable to find block document named …"
        raise PrefectValueError(
            f"Prefect Secret block {name!r} does not exist (create it with "
            f"`prefect block create secret` or Secret(value=…).save({name!r}))"
        ) from None
    return block.get()


def _need_prefect(what: str) -> None:
    try:
        import prefect  # noqa: F401
    except ImportError:
        raise PrefectValueError(f"{what} needs Prefect installed (pip install prefect)") from None
