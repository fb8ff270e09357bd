"""`pipewarden dashboards` as a user runs it: exit codes, the table, secrets out of the output."""

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.dashboards import catalog
from tests.dashboards.support import PASSWORD
from tests.fixtures.grafana import TOKEN

runner = CliRunner()


def write_config(tmp_path: Path, grafana: dict[str, Any] | None, warehouse: str) -> Path:
    data: dict[str, Any] = {
        "warehouse": {"url": warehouse},
        "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
        "tables": {"orders": {"source": "shop", "primary_key": "id", "cursor": "updated_at"}},
    }
    if grafana is not None:
        data["grafana"] = grafana
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def section(url: str) -> dict[str, Any]:
    reader = "postgresql+psycopg://pipewarden_grafana:${READER_PASSWORD}@db.internal/warehouse"
    return {"url": url, "token": "${GRAFANA_TOKEN}", "warehouse_url": reader}


def test_provision_prints_what_it_did_and_a_second_run_changes_nothing(
    grafana, tmp_path, monkeypatch
):
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    monkeypatch.setenv("READER_PASSWORD", PASSWORD)
    config = write_config(tmp_path, section(grafana.url), "sqlite:///wh.sqlite")

    first = runner.invoke(app, ["dashboards", "provision", "--config", str(config)])
    second = runner.invoke(app, ["dashboards", "provision", "--config", str(config)])

    assert first.exit_code == 0, first.output
    assert "4 created, 0 updated, 0 unchanged." in first.output
    assert first.output.count("│ dashboard ") == 2 and "/d/pipewarden-checks/" in first.output
    assert second.exit_code == 0 and "0 created, 0 updated, 4 unchanged." in second.output
    assert grafana.state.secure["pipewarden-warehouse"] == {"password": PASSWORD}
    for out in (first.output, second.output):
        assert TOKEN not in out and PASSWORD not in out and "warning" not in out


def test_a_refused_token_exits_2_with_the_reason_and_no_secret(grafana, tmp_path, monkeypatch):
    wrong = "glsa_another-token-never-to-show-3c9e"
    monkeypatch.setenv("GRAFANA_TOKEN", wrong)
    monkeypatch.setenv("READER_PASSWORD", PASSWORD)
    config = write_config(tmp_path, section(grafana.url), "sqlite:///wh.sqlite")

    result = runner.invoke(app, ["dashboards", "provision", "--config", str(config)])

    assert result.exit_code == 2
    assert "401" in result.output and "grafana.token" in result.output
    assert wrong not in result.output and PASSWORD not in result.output


def test_without_a_read_only_url_the_warehouse_url_is_used_with_a_warning(
    grafana, tmp_path, monkeypatch
):
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    warehouse = f"postgresql+psycopg://pipewarden:{PASSWORD}@wh.internal/dw"
    config = write_config(tmp_path, {"url": grafana.url, "token": "${GRAFANA_TOKEN}"}, warehouse)

    result = runner.invoke(app, ["dashboards", "provision", "--config", str(config)])

    assert result.exit_code == 0, result.output
    assert "warning:" in result.output and "grafana.warehouse_url is not set" in result.output
    assert grafana.state.datasources["pipewarden-warehouse"]["user"] == "pipewarden"
    assert PASSWORD not in result.output


def test_provision_without_a_grafana_section_says_so(tmp_path):
    config = write_config(tmp_path, None, "sqlite:///wh.sqlite")
    result = runner.invoke(app, ["dashboards", "provision", "--config", str(config)])
    assert result.exit_code == 2 and "no grafana: section" in result.output


def test_export_writes_the_dashboards_bound_to_the_datasource(tmp_path, monkeypatch):
    monkeypatch.setenv("GRAFANA_TOKEN", TOKEN)
    grafana = {"url": "http://grafana.internal", "token": "x", "datasource_uid": "wh-ro"}
    config = write_config(tmp_path, grafana, "sqlite:///wh.sqlite")

    by_flag = runner.invoke(app, ["dashboards", "export", str(tmp_path / "a"), "-d", "other"])
    by_config = runner.invoke(app, ["dashboards", "export", str(tmp_path / "b"), "-c", str(config)])

    assert by_flag.exit_code == 2  # -d is no option: the flag is spelled out
    by_flag = runner.invoke(
        app, ["dashboards", "export", str(tmp_path / "a"), "--datasource-uid", "other"]
    )
    for result, folder, uid in ((by_flag, "a", "other"), (by_config, "b", "wh-ro")):
        assert result.exit_code == 0, result.output
        written = sorted((tmp_path / folder).glob("*.json"))
        assert [p.name for p in written] == ["pipewarden-checks.json", "pipewarden-freshness.json"]
        for path in written:
            dashboard = json.loads(path.read_text())
            assert {ref["uid"] for ref in catalog.datasource_refs(dashboard)} == {uid}
            assert "__inputs" not in dashboard


def test_export_with_a_datasource_uid_keeps_the_configured_prefect_links(tmp_path):
    """`--datasource-uid` with `--config`: the uid is the flag's, and the sync runs still link
    to the configured Prefect UI (they lost their links, with no word, as without a config)."""
    grafana = {"url": "http://grafana.internal", "token": "x", "prefect_ui": "https://pf.internal"}
    config = write_config(tmp_path, grafana, "sqlite:///wh.sqlite")
    out = tmp_path / "out"
    args = ["dashboards", "export", str(out), "--datasource-uid", "other", "-c", str(config)]

    result = runner.invoke(app, args)

    assert result.exit_code == 0, result.output
    freshness = json.loads((out / "pipewarden-freshness.json").read_text())
    assert {ref["uid"] for ref in catalog.datasource_refs(freshness)} == {"other"}
    assert "https://pf.internal" in json.dumps(freshness)


def test_export_into_a_file_exits_2_naming_it(tmp_path):
    """A folder that is a file (or cannot be written) is pipewarden unable to do its job
    (exit 2, the path and the reason), not a traceback with the exit code of data trouble."""
    taken = tmp_path / "dashboards"
    taken.write_text("not a folder")
    result = runner.invoke(
        app, ["dashboards", "export", str(taken), "--datasource-uid", "wh"], catch_exceptions=False
    )
    assert result.exit_code == 2
    assert str(taken) in result.output and "Traceback" not in result.output


def test_reader_sql_prints_the_role_of_the_read_only_url(tmp_path):
    grafana = {
        "url": "http://grafana.internal",
        "token": "x",
        "warehouse_url": f"postgresql+psycopg://grafana_ro:{PASSWORD}@db/dw",
    }
    config = write_config(tmp_path, grafana, "sqlite:///wh.sqlite")

    result = runner.invoke(app, ["dashboards", "reader-sql", "--config", str(config)])

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "CREATE ROLE grafana_ro LOGIN;"
    assert "GRANT CONNECT ON DATABASE dw TO grafana_ro;" in lines
    assert "GRANT SELECT ON public.pipewarden_metrics TO grafana_ro;" in lines
    assert PASSWORD not in result.output
