"""Links that land where the answer is: the flow run, and the dashboard panel of the check on
its table and time range; the owner's mentions in the parent only."""

import json
import re
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.alerts.findings import PASSING
from pipewarden.alerts.links import FRESHNESS_UID, OTHER_CHECKS, PANELS, grafana_link, panel_for
from pipewarden.alerts.thread_message import ThreadEntry, render_parent
from pipewarden.config.load import ConfigError
from pipewarden.config.models import SlackLinks
from pipewarden.config.owners import OwnerConfig, owner_channel, owner_mentions, owner_name
from pipewarden.records.alerts import OPENED, Alert
from pipewarden.records.evidence import Evidence, Severity
from pipewarden.records.incidents import Incident
from tests.alerts.support import NOW, alert_config, finding, raise_now
from tests.fixtures.slack import FakeSlack

DASHBOARDS = Path(__file__).resolve().parents[2] / "dashboards"


def _panels() -> dict[str, dict[int, dict[str, object]]]:
    found = {}
    for path in DASHBOARDS.glob("*.json"):
        board = json.loads(path.read_text())
        found[board["uid"]] = {p["id"]: p for p in board["panels"]}
    return found


def test_every_check_kind_links_a_panel_of_the_dashboards_as_shipped() -> None:
    panels = _panels()
    for _, (uid, panel) in [*PANELS, ("other", OTHER_CHECKS)]:
        assert uid in panels and panel in panels[uid], (uid, panel)
    titles = {check: str(panels[uid][id_]["title"]) for check, (uid, id_) in PANELS}
    assert "Freshness" in titles["freshness"] and titles["sync"] == "Sync runs"
    assert titles["reconcile:"].startswith("Reconciliation") and "Anomaly" in titles["anomaly:"]
    assert panel_for("reconcile:keys") == panel_for("reconcile")
    assert panel_for("null_rate:email") == OTHER_CHECKS == panel_for("drift:amount")


def test_the_grafana_link_opens_the_panel_on_the_table_around_the_incident() -> None:
    links = SlackLinks(grafana="https://grafana.internal/sub/d/old-uid/name?orgId=2&var-table=x")
    url = grafana_link(links, "orders", "freshness", NOW, NOW + timedelta(hours=3))
    assert url is not None
    parts = urlsplit(url)
    assert (parts.netloc, parts.path) == ("grafana.internal", f"/sub/d/{FRESHNESS_UID}")
    query = parse_qs(parts.query)
    hour_ms = 3_600_000
    start_ms = int(NOW.timestamp() * 1000)
    assert query == {
        "orgId": ["2"],
        "var-table": ["orders"],
        "viewPanel": ["2"],
        "from": [str(start_ms - hour_ms)],
        "to": [str(start_ms + 4 * hour_ms)],
    }
    still_open = grafana_link(links, "orders", "sync", NOW)
    assert still_open is not None and still_open.endswith("&to=now") and "viewPanel=7" in still_open
    assert grafana_link(SlackLinks(), "orders", "freshness", NOW) is None


def test_the_parent_links_the_flow_run_and_the_panel_from_the_grafana_section(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(
        warehouse_url,
        fake_slack.url,
        grafana="https://grafana.internal",
        links={"prefect_ui": "https://prefect.internal"},
    )
    raise_now(config, finding(reason="late"), finding(check="reconcile", status="differences"))
    deliver_pending(config, now=NOW)
    raise_now(config, finding(status="ok", verdict=PASSING), now=NOW + timedelta(hours=2))
    deliver_pending(config, now=NOW + timedelta(hours=2))

    parent = fake_slack.posted[0]
    context = " ".join(
        e["text"] for b in parent["blocks"] if b["type"] == "context" for e in b["elements"]
    )
    urls = dict((name, url) for url, name in re.findall(r"<([^|>]+)\|([^>]+)>", context))
    fresh = parse_qs(urlsplit(urls["Grafana: freshness"]).query)
    assert urlsplit(urls["Grafana: freshness"]).path == "/d/pipewarden-freshness"
    assert (fresh["var-table"], fresh["viewPanel"], fresh["to"]) == (["orders"], ["2"], ["now"])
    recon = urlsplit(urls["Grafana: reconcile"])
    assert recon.path == "/d/pipewarden-checks" and parse_qs(recon.query)["viewPanel"] == ["5"]
    # Once recovered, the parent's freshness link ends an hour after the incident did.
    updated = fake_slack.updated[-1]["blocks"]
    assert str(int((NOW + timedelta(hours=3)).timestamp() * 1000)) in json.dumps(updated)


def test_an_owner_is_a_channel_or_a_mapping_with_mentions() -> None:
    assert (owner_name("#shop-data"), owner_channel("#shop-data")) == ("#shop-data", "#shop-data")
    assert owner_mentions("#shop-data") == [] and owner_name(None) is None
    team = OwnerConfig(channel="#crm-data", mention="<@U024BE7LH>")
    assert (owner_name(team), owner_channel(team), owner_mentions(team)) == (
        "#crm-data",
        "#crm-data",
        ["<@U024BE7LH>"],
    )
    named = OwnerConfig(name="CRM team", mention=["<!subteam^SAZ94GDB8|@crm>"])
    assert (owner_name(named), owner_channel(named)) == ("CRM team", None)


def test_a_mention_slack_would_not_render_is_refused_by_name(warehouse_url: str) -> None:
    with pytest.raises(ConfigError, match="'@alice' is not a Slack mention"):
        alert_config(warehouse_url, orders_owner={"channel": "#shop-data", "mention": ["@alice"]})


def test_a_reminder_more_often_than_every_five_minutes_is_refused(warehouse_url: str) -> None:
    with pytest.raises(ConfigError, match="under 5m: a reminder that often is noise"):
        alert_config(warehouse_url, "http://127.0.0.1:9/api/", remind_every="1m")


def test_the_parent_links_the_flow_run_that_opened_it() -> None:
    flow_run = "0b6f8e7a-1111-2222-3333-444455556666"
    evidence = Evidence("orders", "freshness", "error", reason="late")
    opening = Alert(created_at=NOW, kind=OPENED, evidence=evidence, id=4, flow_run_id=flow_run)
    incident = Incident(
        id=9,
        table_name="orders",
        check="freshness",
        status="error",
        severity=Severity.ERROR,
        opened_at=NOW,
        last_seen_at=NOW,
        occurrences=1,
    )
    links = SlackLinks(prefect_ui="https://prefect.internal/")
    message = render_parent([ThreadEntry(incident, opening)], NOW, links)
    context = message.blocks[-1]["elements"][0]["text"]
    assert context == (
        f"<https://prefect.internal/runs/flow-run/{flow_run}|Prefect run>"
        " · pipewarden alert 4 · incident 9"
    )
    recorded = Alert(
        created_at=NOW,
        kind=OPENED,
        evidence=evidence,
        flow_run_id=flow_run,
        details={"flow_run_url": "https://ui.example/flow-runs/flow-run/x"},
    )
    shown = render_parent([ThreadEntry(incident, recorded)], NOW).blocks[-1]["elements"][0]
    assert "<https://ui.example/flow-runs/flow-run/x|Prefect run>" in shown["text"]
