"""Freshness SLAs a table's schedule cannot meet: warned about once at load, never refused."""

import logging
from pathlib import Path

import pytest

from pipewarden.config import load_config
from pipewarden.config.advice import config_warnings
from pipewarden.config.load import parse_config


def config_with(schedule: str, **freshness: str):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "warehouse": {"url": "sqlite://"},
            "sources": {"crm": {"url": "sqlite://"}},
            "tables": {
                "customers": {
                    "source": "crm",
                    "primary_key": "id",
                    "cursor": "updated_at",
                    "schedule": schedule,
                    "freshness": freshness,
                }
            },
        },
        Path("test.yaml"),
    )


@pytest.mark.parametrize(
    "schedule,freshness,keys",
    [
        ("daily", {"warn_after": "1h"}, ["warn_after"]),
        ("daily", {"warn_after": "2h", "error_after": "1d"}, ["warn_after", "error_after"]),
        ("daily", {"warn_after": "26h", "error_after": "2d"}, []),
        ("hourly", {"warn_after": "1h"}, ["warn_after"]),
        ("hourly", {"warn_after": "90m"}, []),
        ("realtime", {"warn_after": "5m", "error_after": "30m"}, ["warn_after"]),
        ("realtime", {}, []),
    ],
)
def test_thresholds_no_longer_than_the_schedule_interval_are_warnings(schedule, freshness, keys):
    warnings = config_warnings(config_with(schedule, **freshness))
    assert [w.split(":")[0] for w in warnings] == [f"tables.customers.freshness.{k}" for k in keys]
    assert all(schedule in w for w in warnings)


def test_load_config_logs_each_warning_once_per_process(tmp_path, caplog):
    path = tmp_path / "pipewarden.yaml"
    path.write_text(
        "warehouse: {url: 'sqlite://'}\nsources: {crm: {url: 'sqlite://'}}\n"
        "tables:\n  customers: {source: crm, primary_key: id, cursor: updated_at, "
        "schedule: daily, freshness: {warn_after: 1h}}\n"
    )
    with caplog.at_level(logging.WARNING, logger="pipewarden.config"):
        first = load_config(path)
        load_config(path)  # a flow loads the file again in every task
    assert first.tables["customers"].freshness.warn_after is not None  # loaded, not refused
    warned = [r.getMessage() for r in caplog.records if "freshness.warn_after" in r.getMessage()]
    assert len(warned) == 1 and str(path) in warned[0]
