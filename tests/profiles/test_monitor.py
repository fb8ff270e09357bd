"""The profile table watched like a synced table: segment sizes, schema, freshness, status,
the exporter, and alerts through the outbox to Slack."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from typer.testing import CliRunner

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.cli.main import app
from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import make_engine
from pipewarden.events.tables import latest_table
from pipewarden.profiles.build import build_profiles
from pipewarden.profiles.monitor import MODEL_ROWS, model_sample, watch_build
from pipewarden.records.alerts import alerts
from pipewarden.records.incidents import incidents
from pipewarden.records.metrics import CheckResult
from pipewarden.serve.exporter import TableCollector
from tests.fixtures.slack import FakeSlack
from tests.profiles.support import profiles_config, profiles_data, shop_tables, unique_suffix

START = datetime(2026, 3, 10, tzinfo=UTC)
#: Customers 1-20 bought big 28 days before START, 21-40 big 10 days before, 41-60 small.
BIG_EARLY, BIG_LATE, SMALL = range(1, 21), range(21, 41), range(41, 61)


def _shop(url: str, suffix: str) -> sa.Engine:
    engine = make_engine(url)
    customers, orders = shop_tables(suffix)
    customers.metadata.create_all(engine)
    placed = [(c, 150, START - timedelta(days=28)) for c in BIG_EARLY]
    placed += [(c, 150, START - timedelta(days=10)) for c in BIG_LATE]
    placed += [(c, 50, START - timedelta(days=1)) for c in SMALL]
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [
                {"customer_id": c, "email_consent": True, "updated_at": START - timedelta(days=2)}
                for c in range(1, 61)
            ],
        )
        conn.execute(
            sa.insert(orders),
            [
                {"order_id": i, "customer_id": c, "amount": a, "ordered_at": t, "updated_at": t}
                for i, (c, a, t) in enumerate(placed, 1)
            ],
        )
    return engine


def _config(url: str, suffix: str, **extra: Any) -> PipewardenConfig:
    return profiles_config(
        url, suffix, segments={"big": "monetary >= 100"}, default_segment="small", **extra
    )


def _build(engine: sa.Engine, config: PipewardenConfig, at: datetime) -> list[CheckResult]:
    result = build_profiles(engine, config, as_of=at)
    return watch_build(engine, config, result, now=at)


def _by_check(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.check: r for r in results}


def _profile_alerts(engine: sa.Engine, table: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(alerts).where(alerts.c.table_name == table)).mappings()
        return [dict(r) for r in rows]


def test_a_segment_that_halves_overnight_raises_an_incident_and_a_slack_alert(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    suffix = unique_suffix()
    engine = _shop(warehouse_url, suffix)
    config = _config(warehouse_url, suffix, slack_url=fake_slack.url)
    table = config.profiles.table  # type: ignore[union-attr]
    _build(engine, config, START)
    _build(engine, config, START + timedelta(days=1))

    # Two days later the early big orders are past the 30-day window: big goes from 40 to 20.
    results = _by_check(_build(engine, config, START + timedelta(days=3)))

    change = results["segment_change:big"]
    assert change.status == "error"
    assert (change.observed, change.expected_low) == (20.0, 20.0)
    assert "halved" in (change.reason or "")
    assert results["segment_change:small"].status == "error"  # 20 -> 40: doubled
    assert results["schema"].status == "ok"
    with engine.connect() as conn:
        opened = conn.execute(
            sa.select(incidents.c.check).where(
                incidents.c.table_name == table, incidents.c.closed_at.is_(None)
            )
        )
        assert sorted(opened.scalars()) == ["segment_change:big", "segment_change:small"]
    assert {a["kind"] for a in _profile_alerts(engine, table)} == {"opened"}

    report = deliver_pending(config, now=START + timedelta(days=3))

    assert report.sent and not report.failed
    texts = " ".join(m["text"] for m in fake_slack.posted)
    assert table in texts and "segment_change:big" in texts, texts


def test_stable_builds_raise_nothing(warehouse_url: str) -> None:
    suffix = unique_suffix()
    engine = _shop(warehouse_url, suffix)
    config = _config(warehouse_url, suffix)
    table = config.profiles.table  # type: ignore[union-attr]

    first = _by_check(_build(engine, config, START))
    later = [_by_check(_build(engine, config, START + timedelta(days=d))) for d in (1, 1.5)]

    assert first["segment_change:big"].status == "ok"  # nothing to compare with yet
    for results in later:
        assert results["segment_change:big"].status == "ok", results["segment_change:big"].reason
        assert results["segment_change:big"].observed == 40.0
        assert not [r.check for r in results.values() if r.failing]
    assert _profile_alerts(engine, table) == []


def test_a_build_failing_its_checks_opens_a_schema_incident_and_is_marked_failed(
    warehouse_url: str,
) -> None:
    suffix = unique_suffix()
    engine = _shop(warehouse_url, suffix)
    config = _config(warehouse_url, suffix)
    table = config.profiles.table  # type: ignore[union-attr]
    _build(engine, config, START)
    customers, _ = shop_tables(suffix)
    with engine.begin() as conn:  # deleted behind pipewarden's back: the build's check sees it
        conn.execute(sa.delete(customers).where(customers.c.customer_id == 5))

    results = _by_check(_build(engine, config, START + timedelta(hours=1)))

    assert results["schema"].status == "error"
    assert "59 customers" in (results["schema"].reason or "")
    (alert,) = _profile_alerts(engine, table)
    assert (alert["check"], alert["kind"]) == ("schema", "opened")


def test_status_and_the_exporter_show_the_profile_table_by_its_oldest_input(
    warehouse_url: str, tmp_path: Any
) -> None:
    suffix = unique_suffix()
    engine = _shop(warehouse_url, suffix)
    config = _config(warehouse_url, suffix, error_after="1d")
    table = config.profiles.table  # type: ignore[union-attr]
    now = datetime.now(UTC)

    results = _by_check(watch_build(engine, config, build_profiles(engine, config), now=now))

    # The newest input change is START - 1 day (the small orders), long before now.
    assert results["freshness"].status == "error"
    assert "oldest input" in (results["freshness"].reason or "")
    path = tmp_path / "pipewarden.yaml"
    data = profiles_data(warehouse_url, suffix, segments={"big": "monetary >= 100"})
    path.write_text(json.dumps({**data, "profiles": {**data["profiles"], "error_after": "1d"}}))
    shown = CliRunner().invoke(app, ["status", "--json", "--config", str(path)])
    assert shown.exit_code == 1, shown.output
    (state,) = [s for s in json.loads(shown.output)["tables"] if s["table"] == table]
    assert state["status"] == "error" and state["last_sync"] == "build ok"
    assert json.loads(shown.output)["over_sla"] == [table]
    samples = {
        (m.name, s.labels.get("status")): s
        for m in TableCollector(config, cache_seconds=0).collect()
        for s in m.samples
        if s.labels.get("table") == table
    }
    assert samples[("pipewarden_table_sla_status", "error")].value == 1.0
    assert samples[("pipewarden_table_sla_status", "error")].labels["source"] == "profiles"
    age = samples[("pipewarden_table_freshness_seconds", None)].value
    assert age >= (now - START).total_seconds()


def test_the_profiles_are_as_fresh_as_their_oldest_input_the_cart_stream_included(
    warehouse_url: str,
) -> None:
    suffix = unique_suffix()
    engine = _shop(warehouse_url, suffix)
    config = profiles_config(warehouse_url, suffix, cart=True, error_after="3d")
    quiet = START - timedelta(days=5)  # the stream's newest event, older than every table row
    latest = latest_table(f"shop_latest{suffix}")
    latest.create(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(latest).values(
                subject="7",
                event_id="e1",
                event_type="cart.updated",
                event_time=quiet,
                payload="{}",
                updated_at=quiet,
            )
        )

    result = build_profiles(engine, config, as_of=START)
    fresh = _by_check(watch_build(engine, config, result, now=START))["freshness"]

    assert result.data_as_of == quiet
    assert (fresh.status, fresh.observed) == ("error", timedelta(days=5).total_seconds())


def test_the_model_reads_at_most_its_sample_of_the_changed_rows_evenly_spaced() -> None:
    keys = [str(k) for k in range(25_001)]

    sample = model_sample(keys)

    assert len(sample) <= MODEL_ROWS and sample[0] == "0" and int(sample[-1]) > 20_000
    assert len({int(b) - int(a) for a, b in zip(sample, sample[1:], strict=False)}) == 1
    assert model_sample(keys[:MODEL_ROWS]) == keys[:MODEL_ROWS]
