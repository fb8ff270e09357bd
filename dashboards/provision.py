"""Create or update the datasource, the folder and the dashboards in Grafana, idempotently.

Each object is read first and written only where it differs from what pipewarden would write,
so a second run reports every object `unchanged` and adds no version to Grafana's history.
Grafana never returns a datasource's password: a datasource whose other settings match keeps
the password it holds unless `update_password` is set (after a rotation).

Grafana's refusals are handled where they mean something: 404 is "not there yet, create it";
409 on a create is a datasource or folder of the same name under another uid (named in the
error, never taken over); 412 `version-mismatch` on a folder or a dashboard means someone
changed it between our read and our write, so it is written once more; 412 `name-exists` is
another dashboard with the same title in the folder. A datasource update sends no version, so
Grafana has no version to refuse it for.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from grafana_client import GrafanaApi
from grafana_client.client import GrafanaClientError

from pipewarden.config import PipewardenConfig
from pipewarden.config.grafana import GrafanaConfig
from pipewarden.dashboards import catalog
from pipewarden.dashboards.datasource import DatasourceSpec, datasource_spec
from pipewarden.dashboards.grafana import ProvisionError, grafana_api, message_of, status_of, step

log = logging.getLogger(__name__)

CREATED, UPDATED, UNCHANGED = "created", "updated", "unchanged"
#: Fields Grafana sets on a dashboard itself; they say nothing about its content.
_GRAFANA_OWNED = ("id", "version")
T = TypeVar("T")


@dataclass(frozen=True)
class Change:
    """What provisioning did to one object in Grafana."""

    kind: str
    uid: str
    title: str
    action: str
    detail: str = ""


@dataclass(frozen=True)
class Provisioned:
    """The Grafana version that answered, and what was done, in order."""

    grafana_version: str
    changes: list[Change]


def provision(
    config: PipewardenConfig, update_password: bool = False, api: GrafanaApi | None = None
) -> Provisioned:
    """Make Grafana hold pipewarden's datasource, folder and dashboards as they are here."""
    grafana = config.grafana
    if grafana is None:
        raise ProvisionError("the configuration has no grafana: section (url, token, …)")
    try:
        spec = datasource_spec(
            grafana.datasource_name,
            grafana.datasource_uid,
            grafana.warehouse_url or config.warehouse.url,
        )
    except ValueError as error:  # DatasourceError, or a URL that does not parse
        raise ProvisionError(str(error)) from None
    secrets = [spec.password.get_secret_value()] if spec.password else []
    api = api or grafana_api(grafana)
    with step(grafana, "checking the token (GET /api/frontend/settings)", secrets):
        build = api.health.check() or {}
    changes = []
    with step(grafana, f"provisioning datasource {spec.name!r}", secrets):
        changes.append(_datasource(api, spec, update_password))
    with step(grafana, f"provisioning folder {grafana.folder!r}", secrets):
        changes.append(_folder(api, grafana))
    for dashboard in catalog.dashboards(spec.uid, prefect_ui(config)):
        with step(grafana, f"provisioning dashboard {dashboard['title']!r}", secrets):
            changes.append(_dashboard(api, dashboard, grafana.folder_uid))
    for change in changes:
        log.info("grafana %s %s (%s): %s", change.kind, change.title, change.uid, change.action)
    return Provisioned(str(build.get("version", "unknown")), changes)


def prefect_ui(config: PipewardenConfig) -> str | None:
    """The Prefect UI flow runs link to: grafana.prefect_ui, else Slack's link to it, or None."""
    found = config.grafana.prefect_ui if config.grafana else None
    if found is None and config.slack is not None:
        found = config.slack.links.prefect_ui
    return str(found) if found is not None else None


def _datasource(api: GrafanaApi, spec: DatasourceSpec, update_password: bool) -> Change:
    current = _get(lambda: api.datasource.get_datasource_by_uid(spec.uid))
    if current is None:
        try:
            api.datasource.create_datasource(spec.payload())
        except GrafanaClientError as error:
            if error.status_code != 409:
                raise
            raise ProvisionError(_datasource_taken(api, spec, message_of(error))) from None
        return Change("datasource", spec.uid, spec.name, CREATED)
    changed = spec.differences(current)
    if update_password and spec.password is not None and "password" not in changed:
        changed.append("password")
    if not changed:
        return Change("datasource", spec.uid, spec.name, UNCHANGED)
    api.datasource.update_datasource_by_uid(spec.uid, spec.payload())
    return Change("datasource", spec.uid, spec.name, UPDATED, ", ".join(changed))


def _datasource_taken(api: GrafanaApi, spec: DatasourceSpec, message: str) -> str:
    other = _get(lambda: api.datasource.get_datasource_by_name(spec.name)) or {}
    if other.get("uid") and other["uid"] != spec.uid:
        return (
            f"a datasource named {spec.name!r} already exists with uid {other['uid']!r}: set"
            f" grafana.datasource_uid: {other['uid']} to take it over, or choose another"
            " grafana.datasource_name"
        )
    return f"Grafana refused to create datasource {spec.name!r} (409): {message}"


def _folder(api: GrafanaApi, grafana: GrafanaConfig) -> Change:
    uid, title = grafana.folder_uid, grafana.folder
    current = _get(lambda: api.folder.get_folder(uid))
    if current is None:
        try:
            api.folder.create_folder(title, uid=uid)
        except GrafanaClientError as error:
            if error.status_code != 409:
                raise
            raise ProvisionError(_folder_taken(api, grafana, message_of(error))) from None
        return Change("folder", uid, title, CREATED)
    if current.get("title") == title:
        return Change("folder", uid, title, UNCHANGED)

    def rename() -> None:
        version = (_get(lambda: api.folder.get_folder(uid)) or {}).get("version")
        api.folder.update_folder(uid, title=title, version=version)

    _once_more_if_changed_meanwhile(rename, lambda e: status_of(e) == "version-mismatch")
    return Change("folder", uid, title, UPDATED, f"title was {current.get('title')!r}")


def _folder_taken(api: GrafanaApi, grafana: GrafanaConfig, message: str) -> str:
    folders = api.folder.get_all_folders() or []
    same = [f for f in folders if f.get("title") == grafana.folder]
    if same and same[0].get("uid") != grafana.folder_uid:
        other = same[0]["uid"]
        return (
            f"a folder titled {grafana.folder!r} already exists with uid {other!r}: set"
            f" grafana.folder_uid: {other} to use it, or choose another grafana.folder"
        )
    return f"Grafana refused to create folder {grafana.folder!r} (409): {message}"


def _dashboard(api: GrafanaApi, dashboard: catalog.Dashboard, folder_uid: str) -> Change:
    uid, title = str(dashboard["uid"]), str(dashboard["title"])
    current = _get(lambda: api.dashboard.get_dashboard(uid))
    if current is not None and _same(current, dashboard, folder_uid):
        return Change("dashboard", uid, title, UNCHANGED)
    body = {
        "dashboard": {**dashboard, "id": None},
        "folderUid": folder_uid,
        "overwrite": True,
        "message": "pipewarden dashboards provision",
    }

    try:
        saved = _once_more_if_changed_meanwhile(
            lambda: api.dashboard.update_dashboard(body),
            lambda error: status_of(error) == "version-mismatch",
        )
    except GrafanaClientError as error:
        if status_of(error) != "name-exists":
            raise
        raise ProvisionError(
            f"another dashboard titled {title!r} already exists in folder {folder_uid!r}"
            " (412 name-exists): rename or delete it, then provision again"
        ) from None
    action = CREATED if current is None else UPDATED
    return Change("dashboard", uid, title, action, str((saved or {}).get("url", "")))


def _same(current: dict[str, Any], wanted: catalog.Dashboard, folder_uid: str) -> bool:
    held = {k: v for k, v in current.get("dashboard", {}).items() if k not in _GRAFANA_OWNED}
    mine = {k: v for k, v in wanted.items() if k not in _GRAFANA_OWNED}
    return held == mine and current.get("meta", {}).get("folderUid") == folder_uid


def _get(read: Callable[[], T]) -> T | None:
    """The object, or None where Grafana answers 404."""
    try:
        return read()
    except GrafanaClientError as error:
        if error.status_code == 404:
            return None
        raise


def _once_more_if_changed_meanwhile(
    write: Callable[[], T], changed_meanwhile: Callable[[GrafanaClientError], bool]
) -> T:
    """Write; if Grafana says someone changed the object since it was read, write once more."""
    try:
        return write()
    except GrafanaClientError as error:
        if not changed_meanwhile(error):
            raise
        log.info("grafana: %s; writing once more", message_of(error))
    return write()
