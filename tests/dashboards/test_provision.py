"""Provisioning against a local Grafana: created once, unchanged after, and every refusal named."""

import logging
import socket

import pytest

from pipewarden.dashboards import catalog
from pipewarden.dashboards.grafana import ProvisionError
from pipewarden.dashboards.provision import provision
from tests.dashboards.support import PASSWORD, config_for
from tests.fixtures.grafana import TOKEN, LocalGrafana

UID = "pipewarden-warehouse"


def actions(done) -> dict[tuple[str, str], str]:  # type: ignore[no-untyped-def]
    return {(c.kind, c.uid): c.action for c in done.changes}


def test_first_run_creates_everything_and_a_second_changes_nothing(grafana, grafana_config):
    config = grafana_config()
    first = provision(config)

    dashboard_uids = {d["uid"] for d in catalog.dashboards(UID)}
    assert dashboard_uids == {"pipewarden-freshness", "pipewarden-checks"}
    assert actions(first) == {
        ("datasource", UID): "created",
        ("folder", "pipewarden"): "created",
        **{("dashboard", uid): "created" for uid in dashboard_uids},
    }
    assert first.grafana_version == "11.3.0"
    ds = grafana.state.datasources[UID]
    assert ds["type"] == "grafana-postgresql-datasource"
    assert (ds["url"], ds["user"]) == ("db.internal:5433", "pipewarden_grafana")
    assert ds["jsonData"] == {
        "database": "warehouse",
        "sslmode": "verify-full",
        "timescaledb": False,
    }
    assert grafana.state.secure[UID] == {"password": PASSWORD}
    assert grafana.state.folders["pipewarden"]["title"] == "pipewarden"
    for uid in dashboard_uids:
        held = grafana.state.dashboards[uid]
        assert held["folderUid"] == "pipewarden"
        refs = catalog.datasource_refs(held["dashboard"])
        assert refs and all(ref["uid"] == UID for ref in refs)
        assert "__inputs" not in held["dashboard"]

    writes = len(grafana.writes())
    versions = {uid: d["dashboard"]["version"] for uid, d in grafana.state.dashboards.items()}
    second = provision(config)

    assert set(actions(second).values()) == {"unchanged"}
    assert len(grafana.writes()) == writes
    assert versions == {
        uid: d["dashboard"]["version"] for uid, d in grafana.state.dashboards.items()
    }
    assert grafana.state.datasources[UID]["version"] == 1


def test_what_someone_changed_in_grafana_is_put_back_and_then_left_alone(grafana, grafana_config):
    config = grafana_config()
    provision(config)
    grafana.state.dashboards["pipewarden-checks"]["dashboard"]["panels"].pop()
    grafana.state.datasources[UID]["url"] = "elsewhere:5432"
    grafana.state.secure[UID] = {}  # its password cleared by hand
    grafana.state.folders["pipewarden"]["title"] = "renamed by hand"

    again = provision(config)

    assert actions(again) == {
        ("datasource", UID): "updated",
        ("folder", "pipewarden"): "updated",
        ("dashboard", "pipewarden-freshness"): "unchanged",
        ("dashboard", "pipewarden-checks"): "updated",
    }
    assert next(c.detail for c in again.changes if c.kind == "datasource") == "url, password"
    assert grafana.state.datasources[UID]["url"] == "db.internal:5433"
    assert grafana.state.secure[UID] == {"password": PASSWORD}
    assert grafana.state.folders["pipewarden"]["title"] == "pipewarden"
    wanted = {d["uid"]: d for d in catalog.dashboards(UID)}["pipewarden-checks"]
    held = grafana.state.dashboards["pipewarden-checks"]["dashboard"]
    assert held["panels"] == wanted["panels"] and held["version"] == 2
    assert set(actions(provision(config)).values()) == {"unchanged"}


def test_a_changed_read_only_url_or_a_rotated_password_reaches_grafana(grafana, grafana_config):
    provision(grafana_config())
    rotated = "rotated-password-0b1d"
    url = f"postgresql+psycopg://pipewarden_grafana:{rotated}@db.internal:5433/warehouse"

    kept = provision(grafana_config(warehouse_url=url + "?sslmode=verify-full"))
    assert actions(kept)["datasource", UID] == "unchanged"
    assert grafana.state.secure[UID] == {"password": PASSWORD}  # Grafana cannot tell us

    pushed = provision(grafana_config(warehouse_url=url + "?sslmode=verify-full"), True)
    change = next(c for c in pushed.changes if c.kind == "datasource")
    assert (change.action, change.detail) == ("updated", "password")
    assert grafana.state.secure[UID] == {"password": rotated}

    moved = provision(grafana_config(warehouse_url=url))  # sslmode now the default
    change = next(c for c in moved.changes if c.kind == "datasource")
    assert (change.action, change.detail) == ("updated", "jsonData.sslmode")
    assert grafana.state.datasources[UID]["jsonData"]["sslmode"] == "require"


def test_without_a_read_only_url_the_warehouse_url_is_used_and_must_be_postgresql(grafana):
    config = config_for(grafana.url, warehouse_url=None)
    with pytest.raises(ProvisionError, match="through PostgreSQL.*grafana.warehouse_url"):
        provision(config)
    assert grafana.writes() == []


def test_a_grafana_under_a_sub_path_is_reached():
    server = LocalGrafana(TOKEN, prefix="/grafana").start()
    try:
        done = provision(config_for(server.url))
    finally:
        server.stop()
    assert {c.action for c in done.changes} == {"created"}
    assert server.requests[0].path == "/api/frontend/settings"


def test_a_wrong_token_is_named_without_showing_it(grafana, caplog):
    caplog.set_level(logging.DEBUG)
    wrong = "glsa_wrong-token-that-must-never-show-55e0"
    with pytest.raises(ProvisionError) as raised:
        provision(config_for(grafana.url, token=wrong))
    message = str(raised.value)
    assert "401" in message and "grafana.token" in message and grafana.url in message
    assert wrong not in message and wrong not in caplog.text
    assert grafana.writes() == []


def test_a_datasource_name_taken_under_another_uid_is_reported_not_taken_over(
    grafana, grafana_config
):
    grafana.state.datasources["theirs"] = {"uid": "theirs", "name": "pipewarden warehouse"}
    grafana.state.datasources["theirs"].update(id=99, version=1, type="postgres")
    with pytest.raises(ProvisionError) as raised:
        provision(grafana_config())
    assert "already exists with uid 'theirs'" in str(raised.value)
    assert "grafana.datasource_uid: theirs" in str(raised.value)
    assert set(grafana.state.datasources) == {"theirs"}
    assert grafana.state.folders == {}


def test_a_folder_title_taken_under_another_uid_is_reported(grafana, grafana_config):
    grafana.state.folders["f1"] = {"id": 5, "uid": "f1", "title": "pipewarden", "version": 1}
    with pytest.raises(ProvisionError, match="grafana.folder_uid: f1"):
        provision(grafana_config())
    assert grafana.state.dashboards == {}


def test_a_dashboard_changed_meanwhile_is_written_once_more(grafana, grafana_config):
    body = {
        "message": "The dashboard has been changed by someone else",
        "status": "version-mismatch",
    }
    grafana.fail("POST", "/api/dashboards/db", 412, body)
    done = provision(grafana_config())
    assert {c.action for c in done.changes} == {"created"}
    posts = [r for r in grafana.writes() if r.path == "/api/dashboards/db"]
    assert len(posts) == 3 and posts[0].body == posts[1].body


def test_a_dashboard_changed_twice_meanwhile_stops_with_grafanas_reason(grafana, grafana_config):
    body = {
        "message": "The dashboard has been changed by someone else",
        "status": "version-mismatch",
    }
    grafana.fail("POST", "/api/dashboards/db", 412, body, times=2)
    with pytest.raises(ProvisionError, match=r"\(412\): The dashboard has been changed by someone"):
        provision(grafana_config())


def test_another_dashboard_with_the_same_title_is_named(grafana, grafana_config):
    body = {"message": "A dashboard with the same name in the folder already exists"}
    grafana.fail("POST", "/api/dashboards/db", 412, {**body, "status": "name-exists"})
    with pytest.raises(ProvisionError, match="another dashboard titled .* already exists"):
        provision(grafana_config())


def test_a_folder_renamed_meanwhile_is_renamed_once_more(grafana, grafana_config):
    grafana.state.folders["pipewarden"] = {
        "id": 3,
        "uid": "pipewarden",
        "title": "old",
        "version": 4,
    }
    body = {"message": "The folder has been changed by someone else", "status": "version-mismatch"}
    grafana.fail("PUT", "/api/folders/pipewarden", 412, body)
    done = provision(grafana_config())
    assert actions(done)["folder", "pipewarden"] == "updated"
    puts = [r for r in grafana.writes() if r.method == "PUT" and "folders" in r.path]
    assert [r.body["version"] for r in puts] == [4, 4]
    assert grafana.state.folders["pipewarden"]["title"] == "pipewarden"


def test_a_server_error_names_the_step_and_a_second_run_resumes(grafana, grafana_config, caplog):
    caplog.set_level(logging.DEBUG)
    grafana.fail("POST", "/api/folders", 500, {"message": f"db locked near {PASSWORD}"})
    with pytest.raises(ProvisionError) as raised:
        provision(grafana_config())
    message = str(raised.value)
    assert "while provisioning folder 'pipewarden' (500)" in message
    assert "running provision again resumes" in message
    assert PASSWORD not in message and PASSWORD not in caplog.text and TOKEN not in caplog.text
    assert UID in grafana.state.datasources and grafana.state.dashboards == {}

    done = provision(grafana_config())
    assert actions(done)["datasource", UID] == "unchanged"
    assert actions(done)["folder", "pipewarden"] == "created"


def test_an_unreachable_grafana_is_said_so():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(ProvisionError, match=f"cannot reach Grafana at http://127.0.0.1:{port}"):
        provision(config_for(f"http://127.0.0.1:{port}"))


def test_a_token_without_the_right_role_is_told_which_role_it_needs(grafana, grafana_config):
    body = {"message": "You'll need additional permissions to perform this action."}
    grafana.fail("POST", "/api/datasources", 403, body)
    with pytest.raises(ProvisionError) as raised:
        provision(grafana_config())
    assert "(403 Forbidden)" in str(raised.value) and "Admin role" in str(raised.value)
    assert "provisioning datasource 'pipewarden warehouse'" in str(raised.value)


def test_sync_runs_link_to_the_configured_prefect_ui(grafana, grafana_config):
    provision(grafana_config(prefect_ui="https://prefect.internal/"))
    held = grafana.state.dashboards["pipewarden-freshness"]["dashboard"]
    constant = next(v for v in held["templating"]["list"] if v["name"] == "prefect_ui")
    assert constant["query"] == "https://prefect.internal"
    assert "${prefect_ui}/runs/flow-run/" in str(held["panels"])

    again = provision(grafana_config())  # the URL removed from the config: the links go too
    assert actions(again)["dashboard", "pipewarden-freshness"] == "updated"
    held = grafana.state.dashboards["pipewarden-freshness"]["dashboard"]
    assert "${prefect_ui}" not in str(held["panels"])
