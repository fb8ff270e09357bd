"""Scraping the exporter over real HTTP, and a warehouse filled by real pipewarden runs."""

import shutil
import socket
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from pipewarden.checks.monitoring.run import run_checks
from pipewarden.config.models import PipewardenConfig
from pipewarden.serve.exporter import serve
from tests.fixtures.databases import services_required
from tests.fixtures.shop import Shop

#: Samples by (metric name, label items sorted).
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    """One scrape of `url`, parsed by prometheus_client's own parser."""
    with urllib.request.urlopen(url, timeout=30) as answer:
        text = answer.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(samples: Samples, name: str, **labels: str) -> float:
    """The value of the one sample of `name` whose labels include `labels`."""
    [value] = [
        v
        for (n, items), v in samples.items()
        if n == name and labels.items() <= dict(items).items()
    ]
    return value


@contextmanager
def exporter(config: PipewardenConfig, cache_seconds: float = 0.0) -> Iterator[str]:
    """The exporter on a free port of 127.0.0.1; yields its /metrics URL."""
    server, thread = serve(config, "127.0.0.1", 0, cache_seconds)
    try:
        yield f"http://127.0.0.1:{server.server_port}/metrics"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def free_port() -> int:
    """A port free on 127.0.0.1 now (for a process that binds it itself)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


#: The orders table's options beside the shop fixture's defaults.
TABLE = {
    "owner": "crm-team",
    "columns": {"status": {"in": ["paid", "new"]}},
    "freshness": {"warn_after": "30m", "error_after": "2h"},
}


def config_file(shop: Shop, path: Path) -> Path:
    """The configuration `filled_shop` runs with, as a file for the command line."""
    table = {"source": "shop", "primary_key": ["order_id"], "cursor": "updated_at", **TABLE}
    data = {
        "warehouse": {"url": shop.warehouse_url},
        "sources": {"shop": {"url": shop.source_url}},
        "tables": {"orders": table},
    }
    path.write_text(yaml.safe_dump(data))
    return path


def filled_shop(shop: Shop) -> PipewardenConfig:
    """An orders table 90 minutes old (over warn_after 30m, under error_after 2h) after a sync
    that held two rows and a check run that opened a freshness incident (its alert waits in the
    outbox: no Slack is configured)."""
    shop.add(5, minutes_ago=95)
    shop.add(2, minutes_ago=90, status="bad")
    shop.add(3, minutes_ago=90, status="paid")
    config = shop.config(**TABLE)
    run = shop.sync(config)
    assert run.status == "success" and run.rows_quarantined == 2
    run_checks(config)
    return config


def prometheus_tool(name: str) -> str:
    """The path of `promtool` or `prometheus` (Debian's package; `.ci/run` installs it)."""
    found = shutil.which(name)
    if found is None:
        message = f"{name} is not installed (apt-get install prometheus)"
        if services_required():
            pytest.fail(message + " (PIPEWARDEN_REQUIRE_SERVICES=1)")
        pytest.skip(message)
    return found
