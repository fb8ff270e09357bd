"""The README's configuration reference names every key the configuration models accept."""

import typing
from collections.abc import Iterator
from pathlib import Path

from pydantic import BaseModel

from pipewarden.config import PipewardenConfig

README = Path(__file__).resolve().parents[2] / "README.md"


def _models(annotation: object) -> Iterator[tuple[str, type[BaseModel]]]:
    """The models a field holds: itself (suffix ''), or as a dict's values (suffix '.<name>')."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        yield "", annotation
        return
    if typing.get_origin(annotation) is dict:
        for suffix, model in _models(typing.get_args(annotation)[1]):
            yield ".<name>" + suffix, model
        return
    for arg in typing.get_args(annotation):  # Optional, unions, Annotated
        yield from _models(arg)


def config_keys(model: type[BaseModel] = PipewardenConfig, prefix: str = "") -> list[str]:
    """Every leaf key as written in the file (aliases), dicts' keys as `<name>`."""
    keys = []
    for name, field in model.model_fields.items():
        path = prefix + (field.alias or name)
        nested = list(_models(field.annotation))
        if not nested:
            keys.append(path)
        for suffix, inner in nested:
            keys += config_keys(inner, f"{path}{suffix}.")
    return keys


def reference_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("### Configuration reference")
    return text[start : text.index("\n## ", start)]


def test_every_configuration_key_is_in_the_readme_reference():
    keys = config_keys()
    assert "warehouse.schema" in keys and "slack.base_url" in keys  # the walk sees aliases
    assert "tables.<name>.columns.<name>.in" in keys and "tables.<name>.source_schema" in keys
    reference = reference_section()
    missing = [k for k in keys if f"`{k}`" not in reference]
    assert not missing, f"README.md's configuration reference does not name: {missing}"


def test_the_reference_names_no_key_the_models_refuse():
    keys = set(config_keys())
    rows = [line for line in reference_section().splitlines() if line.startswith("| `")]
    named = [row.split("`")[1] for row in rows]
    assert named and not [k for k in named if k not in keys]
