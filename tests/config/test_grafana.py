"""The grafana: section of pipewarden.yaml: defaults, the token kept secret, bad values named."""

from pathlib import Path

import pytest

from pipewarden.config import ConfigError, load_config

BASE = """
warehouse: {url: "sqlite:///wh.sqlite"}
sources: {shop: {url: "sqlite:///shop.sqlite"}}
tables: {orders: {source: shop, primary_key: id, cursor: updated_at}}
"""


def load(tmp_path: Path, grafana: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "pipewarden.yaml"
    path.write_text(BASE + grafana)
    return load_config(path)


def test_the_section_is_optional(tmp_path):
    assert load(tmp_path, "").grafana is None


def test_the_token_comes_from_the_environment_and_stays_out_of_reprs(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFANA_TOKEN", "glsa_secret-token-0a1b")
    config = load(
        tmp_path, "grafana: {url: 'https://grafana.internal/sub', token: '${GRAFANA_TOKEN}'}"
    )
    grafana = config.grafana
    assert grafana is not None
    assert grafana.token.get_secret_value() == "glsa_secret-token-0a1b"
    assert "glsa_secret" not in repr(config) and "glsa_secret" not in str(grafana)
    assert (grafana.folder, grafana.folder_uid) == ("pipewarden", "pipewarden")
    assert (grafana.datasource_name, grafana.datasource_uid) == (
        "pipewarden warehouse",
        "pipewarden-warehouse",
    )
    assert grafana.warehouse_url is None and str(grafana.url) == "https://grafana.internal/sub"


def test_the_readers_url_stays_out_of_reprs(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFANA_TOKEN", "t")
    config = load(
        tmp_path,
        "grafana: {url: 'https://grafana.internal', token: '${GRAFANA_TOKEN}',"
        " warehouse_url: 'postgresql://reader:readerpass@db/wh'}",
    )
    assert config.grafana is not None and "readerpass" in (config.grafana.warehouse_url or "")
    assert "readerpass" not in repr(config) and "readerpass" not in str(config.grafana)


@pytest.mark.parametrize(
    "section, complaint",
    [
        (
            "grafana: {url: 'https://u:pw@g.internal', token: t}",
            "grafana.url: put no user or password",
        ),
        ("grafana: {url: 'ftp://g.internal', token: t}", "grafana.url: URL scheme should be"),
        ("grafana: {url: 'https://g.internal'}", "grafana.token: Field required"),
        ("grafana: {url: 'https://g.internal', token: t, folder_uid: ''}", "grafana.folder_uid"),
        ("grafana: {url: 'https://g.internal', token: t, colour: red}", "grafana.colour"),
    ],
)
def test_a_bad_section_names_the_key(tmp_path, section, complaint):
    with pytest.raises(ConfigError) as raised:
        load(tmp_path, section)
    assert complaint in str(raised.value)
    assert "pw@" not in str(raised.value)
