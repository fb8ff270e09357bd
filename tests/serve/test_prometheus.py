"""A real Prometheus scrapes `pipewarden exporter` (its own process) and answers PromQL with the
tables' freshness."""

import json
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.serve.support import config_file, filled_shop, free_port, prometheus_tool

DEADLINE_SECONDS = 120


@contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, stopped by its pid when the block ends (killed if it will not stop)."""
    with log.open("wb") as out:
        child = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield child
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=30)


def query(base: str, promql: str) -> list[dict]:
    """The result of an instant PromQL query; empty while Prometheus cannot answer yet."""
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': promql})}"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return list(json.load(answer)["data"]["result"])
    except OSError:
        return []


def test_prometheus_scrapes_the_tables_freshness(shop, tmp_path):
    filled_shop(shop)
    pipewarden_config = config_file(shop, tmp_path / "pipewarden.yaml")
    exporter_port, prometheus_port = free_port(), free_port()
    scrape_config = tmp_path / "prometheus.yml"
    scrape_config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "scrape_configs": [
                    {
                        "job_name": "pipewarden",
                        "static_configs": [{"targets": [f"127.0.0.1:{exporter_port}"]}],
                    }
                ],
            }
        )
    )
    pipewarden = str(Path(sys.executable).with_name("pipewarden"))
    exporter_args = [pipewarden, "exporter", "--config", str(pipewarden_config)]
    exporter_args += ["--host", "127.0.0.1", "--port", str(exporter_port)]
    prometheus_args = [
        prometheus_tool("prometheus"),
        f"--config.file={scrape_config}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{prometheus_port}",
    ]
    base = f"http://127.0.0.1:{prometheus_port}"
    promql = 'pipewarden_table_freshness_seconds{job="pipewarden"}'

    with (
        process(exporter_args, tmp_path / "exporter.log"),
        process(prometheus_args, tmp_path / "prometheus.log") as prometheus,
    ):
        deadline = time.monotonic() + DEADLINE_SECONDS
        found = query(base, promql)
        while not found and time.monotonic() < deadline and prometheus.poll() is None:
            time.sleep(0.2)  # polling interval; the deadline is what ends the wait
            found = query(base, promql)
        up = query(base, 'pipewarden_up{job="pipewarden"}')

    logs = (tmp_path / "exporter.log").read_text() + (tmp_path / "prometheus.log").read_text()
    assert found, logs[-3000:]
    [series] = found
    labels = series["metric"]
    assert (labels["table"], labels["source"], labels["owner"]) == ("orders", "shop", "crm-team")
    assert 90 * 60 - 5 < float(series["value"][1]) < 95 * 60
    assert [float(s["value"][1]) for s in up] == [1.0]
