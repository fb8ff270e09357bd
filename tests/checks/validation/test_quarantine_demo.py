"""The demo's mess, through the checks: each kind of bad value is held, the rest loads."""

import random
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from pipewarden.checks.validation.report import failure_summary
from pipewarden.config.load import parse_config
from pipewarden.demo.config import demo_config
from pipewarden.demo.sources import DemoSources
from tests.checks.validation.support import balanced, sync

CHECKS = {
    "customers": {
        "schema": "pipewarden.checks.schemas.crm:Customers",
        "normalize": {
            "email": ["email"],
            "country": ["country_code"],
            "signup_date": ["empty_to_null", "timestamp_utc"],
        },
    },
    "orders": {
        "schema": "pipewarden.checks.schemas.shop:Orders",
        "normalize": {"currency": ["currency_code"], "status": ["trim", "lower"]},
    },
    "events": {"schema": "pipewarden.checks.schemas.web:Events"},
}


def test_the_demo_mess_lands_in_quarantine_with_its_reasons(tmp_path: Path):
    DemoSources(tmp_path).create(random.Random(7), datetime.now(UTC))
    data = demo_config(tmp_path)
    for name, extra in CHECKS.items():
        data["tables"][name].update(extra)  # type: ignore[index]
    config = parse_config(data, tmp_path / "pipewarden.yaml")
    engine = sa.create_engine(config.warehouse.url)

    found: dict[str, set[tuple[str, str]]] = {}
    for table in CHECKS:
        run = sync(config, table)
        assert balanced(run) and run.rows_loaded > 0.8 * run.rows_read
        found[table] = {(r["column"], r["check"]) for r in failure_summary(engine, run.run_id)}

    assert found["customers"] >= {
        ("email", "not_nullable"),
        ("email", "email_syntax"),
        ("country", "iso_country"),
        ("signup_date", "normalize.timestamp_utc"),
    }
    assert found["orders"] >= {
        ("status", "known_status"),
        ("amount", "non_negative"),
        ("created_at,updated_at", "created_at<=updated_at"),
    }
    assert found["events"] == set()  # late, not malformed: freshness finds the web's problem
    with engine.connect() as conn:
        lower = conn.execute(
            sa.text("SELECT count(*) FROM orders WHERE currency <> upper(currency)")
        )
        assert lower.scalar() == 0
