"""The dashboards kept as JSON in this folder, bound to a datasource for Grafana.

The files are in Grafana's export-for-sharing form: every datasource reference is the input
`${DS_PIPEWARDEN}`, and the Prefect UI's URL the constant input `${VAR_PREFECT_UI}`, declared
in `__inputs`, so a person can also import them by hand and fill both in. Provisioning (by API
or by file) has no such prompt, so `bind` puts the real uid in every reference, the configured
Prefect UI in its constant (or, without one, drops the links to flow runs that would lead
nowhere) and drops `__inputs`.
"""

import copy
import json
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent
#: The datasource input every panel, target and template variable refers to in the files.
DATASOURCE_INPUT = "${DS_PIPEWARDEN}"
POSTGRES_PLUGIN = "grafana-postgresql-datasource"
#: The constant input holding the Prefect UI's base URL, which links to flow runs start with.
PREFECT_UI_INPUT = "${VAR_PREFECT_UI}"
PREFECT_UI_VARIABLE = "${prefect_ui}"

Dashboard = dict[str, Any]


def dashboard_files() -> list[Path]:
    """The JSON files, in name order."""
    return sorted(FOLDER.glob("*.json"))


def load(path: Path) -> Dashboard:
    """One dashboard as stored, with the datasource input unresolved."""
    dashboard: Dashboard = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def bind(dashboard: Dashboard, datasource_uid: str, prefect_ui: str | None = None) -> Dashboard:
    """A copy whose every datasource reference names `datasource_uid`, whose links to flow runs
    start at `prefect_ui` (dropped without it), without `__inputs`."""
    bound = copy.deepcopy(dashboard)
    bound.pop("__inputs", None)
    for ref in datasource_refs(bound):
        ref["uid"] = datasource_uid
    base = prefect_ui.rstrip("/") if prefect_ui else ""
    for variable in bound.get("templating", {}).get("list", []):
        if variable.get("query") == PREFECT_UI_INPUT:
            variable["query"] = base
            for option in [variable["current"], *variable["options"]]:
                option["value"] = option["text"] = base
    if not base:
        for panel in bound.get("panels", []):
            overrides = panel.get("fieldConfig", {}).get("overrides", [])
            for override in overrides:
                override["properties"] = [
                    p for p in override["properties"] if not _links_to_prefect(p)
                ]
            overrides[:] = [o for o in overrides if o["properties"]]
    return bound


def _links_to_prefect(field_property: dict[str, Any]) -> bool:
    if field_property.get("id") != "links":
        return False
    links: list[dict[str, Any]] = field_property.get("value") or []
    return bool(links) and all(PREFECT_UI_VARIABLE in link.get("url", "") for link in links)


def dashboards(datasource_uid: str, prefect_ui: str | None = None) -> list[Dashboard]:
    """Every dashboard, bound to the datasource and the Prefect UI."""
    return [bind(load(path), datasource_uid, prefect_ui) for path in dashboard_files()]


def datasource_refs(node: Any) -> list[dict[str, Any]]:
    """Every `"datasource": {...}` object below `node` (panels, targets, variables)."""
    found: list[dict[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "datasource" and isinstance(value, dict):
                found.append(value)
            else:
                found += datasource_refs(value)
    elif isinstance(node, list):
        for item in node:
            found += datasource_refs(item)
    return found
