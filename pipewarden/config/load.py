"""Reading pipewarden.yaml: environment expansion, validation, errors that name file and key."""

import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from pipewarden.config.advice import config_warnings
from pipewarden.config.imports import make_importable
from pipewarden.config.models import TOKEN_PROBLEM, PipewardenConfig
from pipewarden.config.pii import configured_salt
from pipewarden.config.prefect_values import (
    PrefectValueError,
    is_prefect_reference,
    read_reference,
    read_secret,
)
from pipewarden.config.urls import redact_secrets

log = logging.getLogger(__name__)

DEFAULT_PATH = Path("pipewarden.yaml")
_VAR = re.compile(
    r"\$\{(?:prefect-secret:(?P<secret>[A-Za-z0-9][A-Za-z0-9_-]*)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?::-(?P<default>[^}]*))?)\}"
)


class ConfigError(ValueError):
    """The configuration file cannot be used; the message names the file, the key and why."""


def config_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """`--config` wins, then PIPEWARDEN_CONFIG, then ./pipewarden.yaml. (It may name a Prefect
    Variable or Secret block instead of a file: `prefect-variable:NAME`, `prefect-secret:NAME`.)"""
    if explicit:
        return Path(explicit)
    env = os.environ.get("PIPEWARDEN_CONFIG")
    return Path(env) if env else DEFAULT_PATH


def expand_env(text: str, where: str, secrets: list[str] | None = None) -> str:
    """Replace `${VAR}` and `${VAR:-default}`; a missing variable without default is an error.
    `${prefect-secret:NAME}` is the value of a Prefect Secret block, added to `secrets` so that
    errors can hide it."""

    def substitute(match: re.Match[str]) -> str:
        if match.group("secret"):
            return _secret(match.group("secret"), where, secrets)
        name, default = match.group("name"), match.group("default")
        value = os.environ.get(name)
        if value is None:
            if default is None:
                raise ConfigError(f"{where}: environment variable {name} is not set")
            return default
        return value

    return _VAR.sub(substitute, text)


def _secret(name: str, where: str, secrets: list[str] | None) -> str:
    try:
        value = read_secret(name)
    except PrefectValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    if not isinstance(value, str):
        raise ConfigError(f"{where}: Prefect Secret block {name!r} holds no text")
    if secrets is not None and value:
        secrets.append(value)
    return value


def _expand_tree(node: Any, file: Path, path: str = "", secrets: list[str] | None = None) -> Any:
    if isinstance(node, dict):
        return {
            k: _expand_tree(v, file, f"{path}.{k}" if path else str(k), secrets)
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_expand_tree(v, file, f"{path}[{i}]", secrets) for i, v in enumerate(node)]
    if isinstance(node, str):
        return expand_env(node, f"{file}: {path}", secrets)
    return node


def _describe(error: ValidationError, file: Path, secrets: list[str]) -> str:
    lines = [f"{file}: invalid configuration"]
    items = error.errors()
    # `owner: "#x"` or a mapping: pydantic reports each spelling of such a union, its
    # members named in the path (`owner.str`, `owner.OwnerConfig.mention`).
    unions = {i["loc"][:-1] for i in items if i["loc"][-1:] == ("str",)}
    for item in items:
        loc = item["loc"]
        union = next((u for u in unions if loc[: len(u)] == u and len(loc) > len(u)), None)
        if union is not None:
            if loc[len(union)] == "str" and isinstance(item.get("input"), dict):
                continue  # a mapping was written: not being a string is no news
            loc = union + loc[len(union) + 1 :]
        key = ".".join(str(p) for p in loc) or "(top level)"
        message = redact_secrets(str(item["msg"]).removeprefix("Value error, "))
        for value in secrets:
            message = message.replace(value, "***")
        lines.append(f"  {key}: {message}")
    return "\n".join(lines)


def _slack_token(data: dict[str, Any], file: Path) -> tuple[dict[str, Any], str | None]:
    """`slack.token` naming a variable not set here is no error: alerts never block data.

    The token is left empty and the reason kept (`SlackConfig.token_problem`): syncs, checks
    and reconciliations run, and their alerts wait in the outbox.
    """
    slack = data.get("slack")
    if not isinstance(slack, dict) or not isinstance(slack.get("token"), str):
        return data, None
    try:
        expand_env(slack["token"], f"{file}: slack.token")
    except ConfigError as error:
        return {**data, "slack": {**slack, "token": ""}}, str(error)
    return data, None


def parse_config(data: Any, file: Path) -> PipewardenConfig:
    """Validate already-parsed YAML; `file` is only used in messages."""
    if not isinstance(data, dict):
        raise ConfigError(f"{file}: expected a mapping at the top level")
    data, token_problem = _slack_token(data, file)
    secrets: list[str] = []
    try:
        return PipewardenConfig.model_validate(
            _expand_tree(data, file, secrets=secrets), context={TOKEN_PROBLEM: token_problem}
        )
    except ValidationError as error:
        raise ConfigError(_describe(error, file, secrets)) from None


def load_config(path: str | os.PathLike[str] | None = None) -> PipewardenConfig:
    """Load and validate the configuration: a file, or a Prefect Variable or Secret block."""
    file = config_path(path)
    where = str(path or os.environ.get("PIPEWARDEN_CONFIG") or file)
    if is_prefect_reference(where):
        file = Path(where)  # in messages; schemas_path is relative to the working directory
        data = _read_from_prefect(where)
    else:
        try:
            text = file.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigError(f"{file}: configuration file not found") from None
        data = _parse_yaml(text, file)
    config = parse_config(data, file)
    try:
        configured_salt()
    except ValueError as error:
        raise ConfigError(str(error)) from None
    folder = file.parent / (config.schemas_path or ".")
    if not folder.is_dir():
        raise ConfigError(f"{file}: schemas_path: {folder} is not a folder")
    make_importable(folder)
    warn_once(config, file)
    return config


def _read_from_prefect(where: str) -> Any:
    """The configuration held by a Prefect Variable or Secret block: YAML text or a mapping."""
    try:
        value = read_reference(where)
    except PrefectValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    return _parse_yaml(value, Path(where)) if isinstance(value, str) else value


#: libyaml's safe loader where PyYAML was built with it: the Python one takes 0.8 s of CPU for
#: a 2,000-table file, which a check flow loads three times (libyaml: 0.18 s). It builds the
#: same data (the constructor and resolver are PyYAML's own either way); only its error
#: wording differs, less precise ("found character that cannot start any token").
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _parse_yaml(text: str, file: Path) -> Any:
    """YAML text as data; a syntax error names the line and the problem (in the words of
    PyYAML's Python parser, which reads the text again to say what is wrong)."""
    try:
        return yaml.load(text, Loader=_LOADER)
    except yaml.YAMLError:
        pass
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(error, "problem", None) or "not valid YAML"
        raise ConfigError(f"{file}{where}: {problem}") from None
    return data


_warned: set[str] = set()
_warned_lock = threading.Lock()


def warn_once(config: PipewardenConfig, file: Path) -> None:
    """Log each of the file's warnings once per process (a flow loads it again in every task)."""
    for warning in config_warnings(config):
        message = f"{file}: warning: {warning}"
        with _warned_lock:
            if message in _warned:
                continue
            _warned.add(message)
        log.warning("%s", message)
