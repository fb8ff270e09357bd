"""The configuration kept in Prefect: a Variable or a Secret block, passwords in Secret blocks."""

from collections.abc import Callable
from pathlib import Path
from uuid import uuid4

import pytest
import yaml

from pipewarden.config import ConfigError, load_config

pytestmark = pytest.mark.prefect


def _config(warehouse_url: str, source_url: str) -> dict[str, object]:
    return {
        "warehouse": {"url": warehouse_url},
        "sources": {"shop": {"url": source_url, "max_concurrent_reads": 2}},
        "tables": {"orders": {"source": "shop", "primary_key": "id", "cursor": "updated_at"}},
        "fail_on": "warn",
    }


def test_the_configuration_comes_from_a_variable_or_a_secret_block(
    prefect_harness: None, sqlite_url: Callable[[str], str]
) -> None:
    from prefect.blocks.system import Secret
    from prefect.variables import Variable

    name = f"pw-config-{uuid4().hex[:8]}"
    text = yaml.safe_dump(_config(sqlite_url("wh"), sqlite_url("shop")))
    Variable.set(name.replace("-", "_"), text)
    Secret(value=text).save(name)

    from_variable = load_config(f"prefect-variable:{name.replace('-', '_')}")
    from_secret = load_config(f"prefect-secret:{name}")

    assert from_variable == from_secret
    assert from_secret.fail_on == "warn"
    assert from_secret.sources["shop"].max_concurrent_reads == 2
    with pytest.raises(ConfigError, match="Prefect variable 'nope' does not exist"):
        load_config("prefect-variable:nope")
    with pytest.raises(ConfigError, match="Prefect Secret block 'nope' does not exist"):
        load_config("prefect-secret:nope")


def test_a_secret_in_the_file_names_a_prefect_secret_block_and_never_shows(
    prefect_harness: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from prefect.blocks.system import Secret

    name = f"pw-password-{uuid4().hex[:8]}"
    Secret(value="s3cr3t-Pa55").save(name)
    monkeypatch.setenv("PIPEWARDEN_CONFIG", str(tmp_path / "pipewarden.yaml"))
    config = _config(
        f"postgresql+psycopg://pw:${{prefect-secret:{name}}}@127.0.0.1/wh",
        "sqlite:///shop.sqlite",
    )
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))

    loaded = load_config()

    assert loaded.warehouse.url == "postgresql+psycopg://pw:s3cr3t-Pa55@127.0.0.1/wh"
    assert "s3cr3t" not in repr(loaded)

    shop = config["sources"]["shop"]  # type: ignore[index]
    shop["read_slot_timeout"] = "${prefect-secret:" + name + "}"  # its error quotes the input
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as error:
        load_config()
    assert "sources.shop.read_slot_timeout: not a duration: '***'" in str(error.value)
    assert "s3cr3t" not in str(error.value)
    del shop["read_slot_timeout"]

    config["fail_on"] = "${prefect-secret:missing-one}"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="fail_on: Prefect Secret block 'missing-one'"):
        load_config()
