"""The dashboards kept as JSON in this folder, bound to a datasource for Grafana.

The files are in Grafana's export-for-sharing form: every datasource reference is the input
`${DS_PIPEWARDEN}`, declared in `__inputs`, so a person can also import them by hand and pick
the datasource. Provisioning (by API or by file) has no such prompt, so `bind` puts the real uid
in every reference and drops `__inputs`.
"""

import copy
import json
from pathlib import Path
from typing import Any

FOLDER = Path(__file__).parent
#: The datasource input every panel, target and template variable refers to in the files.
DATASOURCE_INPUT = "${DS_PIPEWARDEN}"
POSTGRES_PLUGIN = "grafana-postgresql-datasource"

Dashboard = dict[str, Any]


def dashboard_files() -> list[Path]:
    """The JSON files, in name order."""
    return sorted(FOLDER.glob("*.json"))


def load(path: Path) -> Dashboard:
    """One dashboard as stored, with the datasource input unresolved."""
    dashboard: Dashboard = json.loads(path.read_text(encoding="utf-8"))
    return dashboard


def bind(dashboard: Dashboard, datasource_uid: str) -> Dashboard:
    """A copy whose every datasource reference names `datasource_uid`, without `__inputs`."""
    bound = copy.deepcopy(dashboard)
    bound.pop("__inputs", None)
    for ref in datasource_refs(bound):
        ref["uid"] = datasource_uid
    return bound


def dashboards(datasource_uid: str) -> list[Dashboard]:
    """Every dashboard, bound to the datasource."""
    return [bind(load(path), datasource_uid) for path in dashboard_files()]


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
