"""Configurations, findings and outbox reads shared by the alert tests."""

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pipewarden.alerts.announce import Raised, raise_alerts
from pipewarden.alerts.findings import FAILING, Finding, Verdict
from pipewarden.config.load import parse_config
from pipewarden.config.models import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import Alert, recent_alerts
from pipewarden.records.evidence import Evidence, Severity
from pipewarden.records.incidents import Incident, incidents
from pipewarden.records.migrate import ensure_tables
from tests.fixtures.slack import TOKEN

NOW = datetime(2026, 3, 2, 15, 20, tzinfo=UTC)


def alert_config(
    warehouse_url: str,
    slack_url: str | None = None,
    orders_owner: Any = "#shop-data",
    grafana: str | None = None,
    **slack: Any,
) -> PipewardenConfig:
    """Three tables: orders owned by #shop-data (or `orders_owner`), customers by #crm-data,
    events by nobody; a `grafana:` section at `grafana` if given."""
    table = {"source": "shop", "primary_key": ["id"], "cursor": "updated_at"}
    data: dict[str, Any] = {
        "warehouse": {"url": warehouse_url},
        "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
        "tables": {
            "orders": {**table, "owner": orders_owner},
            "customers": {**table, "owner": "#crm-data"},
            "events": table,
        },
    }
    if grafana is not None:
        data["grafana"] = {"url": grafana, "token": "glsa_test"}
    if slack_url is not None:
        data["slack"] = {
            "token": TOKEN,
            "default_channel": "#alerts",
            "base_url": slack_url,
            "retries": 1,
            **slack,
        }
    return parse_config(data, Path("t.yaml"))


def finding(
    table: str = "orders",
    check: str = "freshness",
    status: str = "error",
    verdict: Verdict = FAILING,
    details: dict[str, Any] | None = None,
    notice: bool = False,
    **evidence: Any,
) -> Finding:
    """A finding about `table` and `check`; `evidence` holds the other `Evidence` fields."""
    return Finding(Evidence(table, check, status, **evidence), verdict, details or {}, notice)


def raise_now(config: PipewardenConfig, *findings: Finding, now: datetime = NOW) -> Raised:
    engine = cached_engine(config.warehouse.url)
    ensure_tables(engine)
    with engine.begin() as conn:
        return raise_alerts(conn, config, findings, now)


def outbox(config: PipewardenConfig) -> list[Alert]:
    with cached_engine(config.warehouse.url).connect() as conn:
        return recent_alerts(conn)


def all_incidents(config: PipewardenConfig) -> list[Incident]:
    with cached_engine(config.warehouse.url).connect() as conn:
        rows = conn.execute(sa.select(incidents).order_by(incidents.c.id)).mappings()
        return [
            Incident(**{**row, "severity": Severity.from_column(row["severity"])}) for row in rows
        ]
