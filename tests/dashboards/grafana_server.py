"""A local Grafana for tests: the HTTP API endpoints provisioning uses, on 127.0.0.1.

It keeps datasources, folders and dashboards in memory and answers with Grafana's documented
status codes and bodies (docs/sources/developers/http_api: data_source.md, folder.md,
dashboard.md): 401 for a wrong token, 404 for what is not there, 409 for a datasource or folder
whose name or uid is taken, 412 `version-mismatch` and `name-exists` for dashboards and folders.
Like Grafana, it never returns a datasource's `secureJsonData`, only `secureJsonFields`.
Faults queued with `fail` answer the next matching requests before any of that.
"""

import copy
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

Reply = tuple[int, Any]
VERSION = "11.3.0"


@dataclass
class Fault:
    method: str
    path: str
    status: int
    body: Any
    times: int


@dataclass
class Request:
    method: str
    path: str
    body: Any
    authorization: str | None


@dataclass
class GrafanaState:
    """What the server holds, and every request it was sent."""

    token: str
    datasources: dict[str, dict[str, Any]] = field(default_factory=dict)
    secure: dict[str, dict[str, str]] = field(default_factory=dict)
    folders: dict[str, dict[str, Any]] = field(default_factory=dict)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    next_id: int = 1

    def new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


class LocalGrafana:
    """The server, its address and its state; `fail` queues faults, `writes` lists changes."""

    def __init__(self, token: str, prefix: str = "") -> None:
        self.state = GrafanaState(token)
        self.prefix = prefix.rstrip("/")
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        # shutdown() waits for the loop's next poll: a short poll keeps each test's teardown short.
        serve = partial(self._server.serve_forever, poll_interval=0.05)
        self._thread = threading.Thread(target=serve, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}{self.prefix}"

    def start(self) -> "LocalGrafana":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail(self, method: str, path: str, status: int, body: Any = None, times: int = 1) -> None:
        """Answer the next `times` requests `method path…` (a path prefix) with `status`."""
        body = body if body is not None else {"message": f"injected {status}"}
        self.state.faults.append(Fault(method, path, status, body, times))

    def writes(self) -> list[Request]:
        """Requests that could change something (every method but GET)."""
        return [r for r in self.state.requests if r.method != "GET"]

    def answer(self, method: str, raw_path: str, body: Any, auth: str | None) -> Reply:
        path = urlsplit(raw_path).path
        if self.prefix:
            if not path.startswith(self.prefix + "/"):
                return 404, {"message": "Not found"}
            path = path[len(self.prefix) :]
        with self._lock:
            self.state.requests.append(Request(method, path, body, auth))
            for fault in self.state.faults:
                if fault.times > 0 and fault.method == method and path.startswith(fault.path):
                    fault.times -= 1
                    return fault.status, fault.body
            if path == "/api/health":
                return 200, {"database": "ok", "version": VERSION, "commit": "local"}
            if auth != f"Bearer {self.state.token}":
                return 401, {"message": "Invalid API key", "messageId": "api-keys.invalid-key"}
            for route_method, pattern, action in _ROUTES:
                match = pattern.fullmatch(path)
                if match and route_method == method:
                    return action(self.state, body, *(unquote(g) for g in match.groups()))
        return 404, {"message": "Not found"}


def _handler(grafana: LocalGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            status, reply = grafana.answer(
                self.command, self.path, body, self.headers.get("Authorization")
            )
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
            pass

    return Handler


# Datasources ---------------------------------------------------------------------------------


def _datasource_view(state: GrafanaState, uid: str) -> dict[str, Any]:
    view = copy.deepcopy(state.datasources[uid])
    view["secureJsonFields"] = {k: True for k in state.secure.get(uid, {})}
    return view


def _datasource_by(state: GrafanaState, key: str, value: str) -> Reply:
    for uid, ds in state.datasources.items():
        if ds.get(key) == value:
            return 200, _datasource_view(state, uid)
    return 404, {"message": "Data source not found"}


def _create_datasource(state: GrafanaState, body: Any) -> Reply:
    if not body.get("name") or not body.get("type"):
        return 400, {"message": "Required data source name and type"}
    if any(ds["name"] == body["name"] for ds in state.datasources.values()):
        return 409, {"message": "data source with the same name already exists"}
    uid = body.get("uid") or f"ds{state.next_id}"
    if uid in state.datasources:
        return 409, {"message": "data source with the same uid already exists"}
    stored = {k: copy.deepcopy(v) for k, v in body.items() if k != "secureJsonData"}
    stored.update(id=state.new_id(), uid=uid, orgId=1, version=1, readOnly=False)
    state.datasources[uid] = stored
    state.secure[uid] = dict(body.get("secureJsonData") or {})
    view = _datasource_view(state, uid)
    return 200, {"datasource": view, "id": view["id"], "message": "Datasource added", **_n(view)}


def _update_datasource(state: GrafanaState, body: Any, uid: str) -> Reply:
    if uid not in state.datasources:
        return 404, {"message": "Data source not found"}
    held = state.datasources[uid]
    if "version" in body and body["version"] != held["version"]:
        message = "Datasource has already been updated by someone else. Please reload and try again"
        return 409, {"message": message}
    if any(ds["name"] == body.get("name") and u != uid for u, ds in state.datasources.items()):
        return 409, {"message": "data source with the same name already exists"}
    stored = {k: copy.deepcopy(v) for k, v in body.items() if k not in ("secureJsonData", "id")}
    stored.update(id=held["id"], uid=uid, orgId=1, version=held["version"] + 1, readOnly=False)
    state.datasources[uid] = stored
    # Grafana keeps secure fields a request does not send.
    state.secure[uid] = {**state.secure.get(uid, {}), **(body.get("secureJsonData") or {})}
    view = _datasource_view(state, uid)
    return 200, {"datasource": view, "id": view["id"], "message": "Datasource updated", **_n(view)}


def _n(view: dict[str, Any]) -> dict[str, Any]:
    return {"name": view["name"]}


# Folders -------------------------------------------------------------------------------------


def _get_folder(state: GrafanaState, body: Any, uid: str) -> Reply:
    if uid not in state.folders:
        return 404, {"message": "folder not found", "status": "not-found"}
    return 200, copy.deepcopy(state.folders[uid])


def _list_folders(state: GrafanaState, body: Any) -> Reply:
    return 200, [
        {"id": f["id"], "uid": f["uid"], "title": f["title"]} for f in state.folders.values()
    ]


def _create_folder(state: GrafanaState, body: Any) -> Reply:
    title = (body or {}).get("title")
    if not title:
        return 400, {"message": "folder title cannot be empty"}
    uid = body.get("uid") or f"f{state.next_id}"
    if uid in state.folders:
        return 409, {"message": "a folder/dashboard with the same uid already exists"}
    if any(f["title"] == title for f in state.folders.values()):
        return 409, {"message": "a folder with the same name already exists"}
    folder = {"id": state.new_id(), "uid": uid, "title": title, "url": f"/dashboards/f/{uid}/"}
    folder["version"] = 1
    state.folders[uid] = folder
    return 200, copy.deepcopy(folder)


def _update_folder(state: GrafanaState, body: Any, uid: str) -> Reply:
    if uid not in state.folders:
        return 404, {"message": "folder not found", "status": "not-found"}
    folder = state.folders[uid]
    if not body.get("overwrite") and body.get("version") != folder["version"]:
        message = "The folder has been changed by someone else"
        return 412, {"message": message, "status": "version-mismatch"}
    folder.update(title=body.get("title", folder["title"]), version=folder["version"] + 1)
    return 200, copy.deepcopy(folder)


# Dashboards ----------------------------------------------------------------------------------


def _get_dashboard(state: GrafanaState, body: Any, uid: str) -> Reply:
    if uid not in state.dashboards:
        return 404, {"message": "Dashboard not found"}
    held = state.dashboards[uid]
    folder = state.folders.get(held["folderUid"], {})
    meta = {
        "url": f"/d/{uid}/{_slug(held['dashboard']['title'])}",
        "slug": _slug(held["dashboard"]["title"]),
        "folderUid": held["folderUid"],
        "folderTitle": folder.get("title", "General"),
        "version": held["dashboard"]["version"],
        "canSave": True,
        "provisioned": False,
    }
    return 200, {"dashboard": copy.deepcopy(held["dashboard"]), "meta": meta}


def _save_dashboard(state: GrafanaState, body: Any) -> Reply:
    dashboard = copy.deepcopy(body.get("dashboard") or {})
    if not dashboard.get("title"):
        return 400, {"message": "Dashboard title cannot be empty", "status": "empty-name"}
    folder_uid = body.get("folderUid") or ""
    if folder_uid and folder_uid not in state.folders:
        return 400, {"message": "folder not found", "status": "not-found"}
    uid = dashboard.get("uid") or f"d{state.next_id}"
    held = state.dashboards.get(uid)
    overwrite = bool(body.get("overwrite"))
    if (
        held is not None
        and not overwrite
        and dashboard.get("version") != held["dashboard"]["version"]
    ):
        message = "The dashboard has been changed by someone else"
        return 412, {"message": message, "status": "version-mismatch"}
    for other_uid, other in state.dashboards.items():
        same_place = other["folderUid"] == folder_uid and other_uid != uid
        if same_place and other["dashboard"]["title"] == dashboard["title"] and not overwrite:
            message = "A dashboard with the same name in the folder already exists"
            return 412, {"message": message, "status": "name-exists"}
    version = 1 if held is None else held["dashboard"]["version"] + 1
    dashboard_id = state.new_id() if held is None else held["dashboard"]["id"]
    dashboard.update(id=dashboard_id, uid=uid, version=version)
    state.dashboards[uid] = {"dashboard": dashboard, "folderUid": folder_uid}
    slug = _slug(dashboard["title"])
    return 200, {
        "id": dashboard_id,
        "uid": uid,
        "url": f"/d/{uid}/{slug}",
        "status": "success",
        "version": version,
        "slug": slug,
    }


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _settings(state: GrafanaState, body: Any) -> Reply:
    return 200, {"buildInfo": {"version": VERSION, "commit": "local", "edition": "Open Source"}}


_ROUTES: list[tuple[str, re.Pattern[str], Callable[..., Reply]]] = [
    ("GET", re.compile(r"/api/frontend/settings"), _settings),
    (
        "GET",
        re.compile(r"/api/datasources/uid/([^/]+)"),
        lambda s, b, u: _datasource_by(s, "uid", u),
    ),
    (
        "GET",
        re.compile(r"/api/datasources/name/([^/]+)"),
        lambda s, b, n: _datasource_by(s, "name", n),
    ),
    ("POST", re.compile(r"/api/datasources"), _create_datasource),
    ("PUT", re.compile(r"/api/datasources/uid/([^/]+)"), _update_datasource),
    ("GET", re.compile(r"/api/folders"), _list_folders),
    ("GET", re.compile(r"/api/folders/([^/]+)"), _get_folder),
    ("POST", re.compile(r"/api/folders"), _create_folder),
    ("PUT", re.compile(r"/api/folders/([^/]+)"), _update_folder),
    ("GET", re.compile(r"/api/dashboards/uid/([^/]+)"), _get_dashboard),
    ("POST", re.compile(r"/api/dashboards/db"), _save_dashboard),
]
