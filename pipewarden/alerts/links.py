"""Where an alert's links land: the Prefect flow run that found it, and the dashboard panel
that shows its kind of check, opened on its table and on a time range around the incident.

Freshness and syncs are on the freshness dashboard, checks and reconciliation on the checks
dashboard (`dashboards/*.json`; a test holds the uids and panel ids here equal to the files).
"""

from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pipewarden.config.models import SlackLinks

FRESHNESS_UID, CHECKS_UID = "pipewarden-freshness", "pipewarden-checks"
#: Check name (or prefix ending in `:`) → (dashboard uid, panel id); the first match wins.
PANELS: list[tuple[str, tuple[str, int]]] = [
    ("freshness", (FRESHNESS_UID, 2)),  # Freshness of $table against its SLA
    ("sync", (FRESHNESS_UID, 7)),  # Sync runs
    ("schema", (FRESHNESS_UID, 7)),  # Sync runs: the run that met the new column
    ("reconcile", (CHECKS_UID, 5)),  # Reconciliation: differences found and repaired
    ("reconcile:", (CHECKS_UID, 5)),
    ("anomaly:", (CHECKS_UID, 4)),  # Anomaly history
]
#: Every other check (column checks, drift, null rates): failing check results by status.
OTHER_CHECKS = (CHECKS_UID, 3)
#: How much of the time before the incident (and after its end) the dashboard shows.
MARGIN = timedelta(hours=1)


def panel_for(check: str) -> tuple[str, int]:
    """The dashboard uid and panel id that show `check`'s results."""
    for name, target in PANELS:
        if check == name or (name.endswith(":") and check.startswith(name)):
            return target
    return OTHER_CHECKS


def grafana_link(
    links: SlackLinks,
    table_name: str,
    check: str,
    start: datetime,
    end: datetime | None = None,
) -> str | None:
    """The panel for `check` on `table_name`, from before `start` to after `end` (now while
    the incident is open); None without a Grafana URL.

    `slack.links.grafana` may be the server or any dashboard URL on it: the part before
    `/d/` is the server, and its query (an `orgId`) is kept.
    """
    if links.grafana is None:
        return None
    parts = urlsplit(str(links.grafana))
    path = parts.path.split("/d/")[0].rstrip("/")
    uid, panel = panel_for(check)
    kept = [(k, v) for k, v in parse_qsl(parts.query) if not k.startswith("var-")]
    kept = [(k, v) for k, v in kept if k not in ("viewPanel", "from", "to")]
    until = "now" if end is None else str(_ms(end + MARGIN))
    query = [
        *kept,
        ("var-table", table_name),
        ("viewPanel", str(panel)),
        ("from", str(_ms(start - MARGIN))),
        ("to", until),
    ]
    return urlunsplit(parts._replace(path=f"{path}/d/{uid}", query=urlencode(query)))


def prefect_link(links: SlackLinks, flow_run_id: str | None, recorded: str | None) -> str | None:
    """The flow run in the Prefect UI: under `slack.links.prefect_ui`, else the UI URL Prefect
    gave when the alert was raised; None outside Prefect."""
    if links.prefect_ui is not None and flow_run_id:
        return f"{str(links.prefect_ui).rstrip('/')}/runs/flow-run/{flow_run_id}"
    return recorded


def _ms(at: datetime) -> int:
    return int(at.timestamp() * 1000)
