"""The demo's pipewarden.yaml: the three sample sources into an embedded SQLite warehouse."""

from pathlib import Path

import yaml


def demo_config(folder: Path) -> dict[str, object]:
    def url(name: str) -> str:
        return f"sqlite:///{folder / (name + '.sqlite')}"

    from pipewarden.demo.webhooks import STREAM, stream_config

    return {
        "warehouse": {"url": url("warehouse")},
        "sources": {name: {"url": url(name)} for name in ("crm", "shop", "web")},
        "tables": {
            "customers": {
                "source": "crm",
                "primary_key": ["customer_id"],
                "cursor": "updated_at",
                "lookback": "10m",
                "schedule": "hourly",
                "owner": "#crm-data",
                "freshness": {"warn_after": "2h", "error_after": "6h"},
                "schema": "pipewarden.checks.schemas.crm:Customers",
                "normalize": {
                    "email": ["email"],
                    "first_name": ["trim", "empty_to_null"],
                    "last_name": ["trim", "empty_to_null"],
                    "country": ["country_code"],
                    "signup_date": ["timestamp_utc"],
                },
            },
            "orders": {
                "source": "shop",
                "primary_key": ["order_id"],
                "cursor": "updated_at",
                "lookback": "10m",
                "schedule": "realtime",
                "owner": "#shop-data",
                "freshness": {"warn_after": "30m", "error_after": "2h"},
                "schema": "pipewarden.checks.schemas.shop:Orders",
                "normalize": {"status": ["trim", "lower"], "currency": ["currency_code"]},
            },
            "events": {
                "source": "web",
                "primary_key": ["event_id"],
                "cursor": "occurred_at",
                "lookback": "5m",
                "schedule": "realtime",
                "owner": "#web-analytics",
                "freshness": {"warn_after": "1h", "error_after": "2h"},
                "schema": "pipewarden.checks.schemas.web:Events",
                "normalize": {"url": ["trim", "empty_to_null"]},
            },
        },
        "streams": {STREAM: stream_config()},
    }


def write_demo_config(folder: Path) -> Path:
    path = folder / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(demo_config(folder), sort_keys=False), encoding="utf-8")
    return path
