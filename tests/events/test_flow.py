"""The hourly stream reconciliation as Prefect runs it: Failed while deliveries are missed,
Completed once they are backfilled."""

import json
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from pipewarden.events.tables import landing_table
from tests.events.support import ENV, orders_source, stream_config, write_config


@pytest.mark.prefect
def test_reconcile_streams_flow(postgres, tmp_path, monkeypatch, prefect_harness):
    from pipewarden.flows.events import reconcile_streams_flow

    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    warehouse, source = postgres.new("wh"), postgres.new("shop")
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
    orders_source(source, start)
    config = stream_config(warehouse, source)
    config["streams"]["shop"]["reconcile"]["window"] = "3h"
    path = str(write_config(tmp_path, config))
    engine = sa.create_engine(warehouse)
    table = landing_table("shop_events")
    table.metadata.create_all(engine)
    now = datetime.now(UTC)
    with engine.begin() as conn:  # every paid order arrived but 7 and 9
        conn.execute(
            table.insert(),
            [
                {
                    "event_id": f"e{i}",
                    "event_type": "order.paid",
                    "event_time": start + timedelta(minutes=i),
                    "received_at": now,
                    "stored_at": now,
                    "source_key": str(i),
                    "delivery": "webhook",
                    "payload": json.dumps({"order_id": i}),
                }
                for i in range(1, 31)
                if i not in (7, 9)
            ],
        )
    engine.dispose()
    dry = reconcile_streams_flow(repair=False, config_path=path, return_state=True)
    assert dry.is_failed() and "2 deliveries missed (7, 9)" in dry.message
    repaired = reconcile_streams_flow(repair=True, config_path=path, return_state=True)
    assert repaired.is_completed()
    assert sorted(repaired.result()[0]["backfilled"]) == ["7", "9"]
