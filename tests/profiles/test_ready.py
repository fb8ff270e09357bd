"""`pipewarden ready NAME` and `GET /ready?campaign=NAME`: go, and hold for each reason."""

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
import yaml
from starlette.testclient import TestClient
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.config import load_config
from pipewarden.db.engines import make_engine
from pipewarden.measurements.cursor import NEWEST_CURSOR
from pipewarden.profiles.publish import build_and_publish
from pipewarden.records.evidence import Severity
from pipewarden.records.incidents import incidents
from pipewarden.records.metrics import metrics
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.reconcile_runs import reconcile_runs
from pipewarden.records.tables import watermarks
from pipewarden.serve.profiles_api import create_profiles_app
from tests.profiles.test_build import _load_shop

TOKEN = "ready-token-3e1a"


def _setup(url: str, tmp_path: Path, fields: list[str]) -> tuple[sa.Engine, Path]:
    engine = make_engine(url)
    _load_shop(engine)
    ensure_tables(engine)
    with engine.begin() as conn:  # what a sync of `orders` leaves
        conn.execute(
            sa.insert(watermarks).values(
                table_name="orders", cursor_value="x", run_id="s1", updated_at=datetime.now(UTC)
            )
        )
    config = {
        "warehouse": {"url": url},
        "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
        "tables": {
            "orders": {
                "source": "shop",
                "primary_key": "order_id",
                "cursor": "updated_at",
                "freshness": {"error_after": "2h"},
            }
        },
        "profiles": {
            "customers": {"table": "customers"},
            "orders": {"table": "orders", "updated_at": "updated_at"},
            "api": {"token": TOKEN},
        },
        "campaigns": {"spring": {"tables": ["orders"], "profile_fields": fields}},
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return engine, path


def _newest_row(engine: sa.Engine, age: timedelta) -> None:
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(metrics).values(
                measured_at=now,
                table_name="orders",
                metric=NEWEST_CURSOR,
                value=(now - age).timestamp(),
                labels="{}",
            )
        )


def _ready(path: Path) -> tuple[int, str]:
    """The exit code and the reasons, one a line (`--json`: no wrapping)."""
    result = CliRunner().invoke(app, ["ready", "spring", "--config", str(path), "--json"])
    answer = json.loads(result.output)
    return result.exit_code, "\n".join([answer["decision"], *answer["reasons"]])


def test_go_when_everything_is_sound_then_hold_for_each_reason(
    warehouse_url: str, tmp_path: Path
) -> None:
    engine, path = _setup(warehouse_url, tmp_path, ["segment", "r"])
    _newest_row(engine, timedelta(minutes=5))
    build_and_publish(engine, load_config(path))

    assert _ready(path) == (0, "go")

    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(incidents).values(
                table_name="orders",
                check="freshness",
                status="error",
                severity=Severity.ERROR.column,
                opened_at=now,
                last_seen_at=now,
                occurrences=1,
            )
        )
        conn.execute(
            sa.insert(reconcile_runs).values(
                run_id="r1",
                table_name="orders",
                started_at=now,
                status="differences",
                action="compare",
                missing=2,
                extra=1,
                changed=0,
                remaining=3,
            )
        )
    _newest_row(engine, timedelta(hours=3))
    code, output = _ready(path)

    assert code == 1 and output.startswith("hold")
    assert "table orders: newest row 3h" in output and "over error_after" in output
    assert "1 open error incident" in output
    assert "last reconciliation left 3 differences" in output


def test_an_unknown_profile_field_is_refused_and_no_build_holds(
    warehouse_url: str, tmp_path: Path
) -> None:
    engine, path = _setup(warehouse_url, tmp_path, ["segment", "segmnt"])
    _newest_row(engine, timedelta(minutes=5))

    typo = CliRunner().invoke(app, ["ready", "spring", "--config", str(path), "--json"])
    assert typo.exit_code == 2  # a typo is the config's fault, not a reason to hold
    assert "campaigns.spring.profile_fields: no profile field 'segmnt'" in typo.output
    config = yaml.safe_load(path.read_text())
    config["campaigns"]["spring"]["profile_fields"] = ["segment"]
    path.write_text(yaml.safe_dump(config))

    code, output = _ready(path)
    assert code == 1 and "customer_profiles was never built" in output

    build_and_publish(engine, load_config(path))
    code, output = _ready(path)
    assert code == 0 and output == "go"


def test_the_http_gate_answers_503_on_hold_and_names_an_unknown_campaign(
    warehouse_url: str, tmp_path: Path
) -> None:
    engine, path = _setup(warehouse_url, tmp_path, ["segment"])
    _newest_row(engine, timedelta(minutes=5))
    client = TestClient(create_profiles_app(load_config(path)))
    auth = {"Authorization": f"Bearer {TOKEN}"}

    held = client.get("/ready?campaign=spring", headers=auth)
    build_and_publish(engine, load_config(path))
    go = client.get("/ready?campaign=spring", headers=auth)
    unknown = client.get("/ready?campaign=autumn", headers=auth)

    assert held.status_code == 503 and held.json()["decision"] == "hold"
    assert go.status_code == 200 and go.json() == {
        "campaign": "spring",
        "decision": "go",
        "reasons": [],
    }
    assert unknown.status_code == 404 and "unknown campaign 'autumn'" in unknown.json()["error"]
    assert client.get("/ready?campaign=spring").status_code == 401
    assert CliRunner().invoke(app, ["ready", "autumn", "--config", str(path)]).exit_code == 2


def test_an_open_error_incident_of_the_profile_table_holds(
    warehouse_url: str, tmp_path: Path
) -> None:
    engine, path = _setup(warehouse_url, tmp_path, ["segment"])
    _newest_row(engine, timedelta(minutes=5))
    build_and_publish(engine, load_config(path))
    assert _ready(path) == (0, "go")
    now = datetime.now(UTC)
    with engine.begin() as conn:  # what a segment that halved overnight leaves open
        conn.execute(
            sa.insert(incidents).values(
                table_name="customer_profiles",
                check="segment_change:champions",
                status="error",
                severity=Severity.ERROR.column,
                opened_at=now,
                last_seen_at=now,
                occurrences=1,
            )
        )

    code, output = _ready(path)

    assert code == 1
    assert "profiles: 1 open error incident(s) on customer_profiles" in output


def test_a_table_or_stream_with_nothing_loaded_holds_even_without_an_sla(
    warehouse_url: str, tmp_path: Path
) -> None:
    """No SLA set, never loaded: a send would read empty data, so the answer is hold."""
    engine, path = _setup(warehouse_url, tmp_path, [])
    config = yaml.safe_load(path.read_text())
    del config["tables"]["orders"]["freshness"]
    config["streams"] = {
        "carts": {
            "signing": {"scheme": "shopify", "secrets": "a-signing-secret-1"},
            "event_types": ["cart.updated"],
        }
    }
    config["campaigns"]["spring"]["streams"] = ["carts"]
    path.write_text(yaml.safe_dump(config))

    code, reasons = _ready(path)

    assert code == 1
    assert reasons.splitlines() == [
        "hold",
        "table orders: no rows with a cursor time loaded yet",
        "stream carts: no events received yet",
    ]
    _newest_row(engine, timedelta(days=30))  # loaded once, long ago; no SLA says too old
    assert _ready(path) == (1, "hold\nstream carts: no events received yet")
