"""`pipewarden serve`: the receiver and the profile API answer on one port, in a process."""

import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
import yaml

from pipewarden.config import load_config
from pipewarden.db.engines import make_engine
from pipewarden.profiles.publish import build_and_publish
from pipewarden.records.metrics import metrics
from pipewarden.serve.profile_figures import RESPONSES_METRIC
from tests.events.support import ENV, Receiver, stream_config
from tests.profiles.test_build import _load_shop

TOKEN = "serve-token-81b0"


class Served(Receiver):
    """A running `pipewarden serve` (the receiver's harness, another command)."""

    def start(self, deadline_seconds: float = 90, until: str = "/health/ready") -> "Served":
        log = open(self.config_path.parent / f"receiver-{self.port}.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "pipewarden.cli.main", "serve"]
            + ["--config", str(self.config_path), "--port", str(self.port), *self.extra_args],
            env={**os.environ, **ENV, "PW_PROFILE_TOKEN": TOKEN},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.wait_ready(deadline_seconds, until)
        return self


def _config_file(tmp_path: Path, url: str) -> Path:
    config = stream_config(url)
    config["profiles"] = {
        "customers": {"table": "customers", "consent": "email_consent"},
        "orders": {"table": "orders", "updated_at": "updated_at"},
        "api": {"token": "${PW_PROFILE_TOKEN}", "fields": ["segment"]},
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _built_shop(postgres, tmp_path: Path, monkeypatch) -> tuple[sa.Engine, Path]:
    """The shop on a new PostgreSQL database, its profiles built, the token in the env."""
    url = postgres.new("pwserve")
    engine = make_engine(url)
    _load_shop(engine)
    path = _config_file(tmp_path, url)
    for name, value in {**ENV, "PW_PROFILE_TOKEN": TOKEN}.items():
        monkeypatch.setenv(name, value)
    build_and_publish(engine, load_config(path))
    return engine, path


def test_serve_runs_the_receiver_and_the_profile_api_together(
    postgres, tmp_path: Path, monkeypatch
) -> None:
    engine, path = _built_shop(postgres, tmp_path, monkeypatch)
    served = Served(path).start()
    try:
        profile = httpx.get(
            f"{served.url}/profiles/1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        refused = httpx.get(f"{served.url}/profiles/1", timeout=10)
        receiver = httpx.get(f"{served.url}/health/ready", timeout=10)
    finally:
        served.stop()

    assert profile.status_code == 200, served.log()
    assert set(profile.json()) == {"customer_id", "segment"}
    # A process cache of its own: the build above could not fill it, so the warehouse answers.
    assert profile.headers["X-Profile-Source"] == "warehouse"
    assert refused.status_code == 401
    assert receiver.status_code == 200


def test_serve_only_profiles_runs_the_api_alone(postgres, tmp_path: Path) -> None:
    url = postgres.new("pwserve")
    _load_shop(make_engine(url))
    path = _config_file(tmp_path, url)
    served = Served(path, extra_args=["--only", "profiles"])
    served.start(until="/profiles-metrics")
    try:
        answer = httpx.get(
            f"{served.url}/profiles/1", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
        )
        no_receiver = httpx.get(f"{served.url}/health/ready", timeout=10)
    finally:
        served.stop()

    assert answer.headers["X-Profile-Fallback-Reason"] == "no-build"  # nothing built yet
    assert no_receiver.status_code == 404


def test_serve_on_a_port_already_taken_exits_2(sqlite_url, tmp_path: Path) -> None:
    """uvicorn cannot bind: pipewarden's exit 2 (it could not do its job) naming the address,
    not uvicorn's own exit 3, which no script reading pipewarden's three codes expects."""
    import socket

    path = _config_file(tmp_path, sqlite_url("wh"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        done = subprocess.run(
            [sys.executable, "-m", "pipewarden.cli.main", "serve", "--only", "profiles"]
            + ["--config", str(path), "--port", port],
            env={**os.environ, **ENV, "PW_PROFILE_TOKEN": TOKEN},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 2, done.stderr
    assert f"127.0.0.1:{port}" in done.stderr


@pytest.mark.parametrize("only", [[], ["--only", "profiles"]], ids=["together", "alone"])
def test_the_answers_counted_before_a_stop_reach_the_warehouse(
    postgres, tmp_path: Path, monkeypatch, only: list[str]
) -> None:
    """The exporter sums what the API wrote: answers since its last write (every 10 s, and
    only while requests come) were lost when the process stopped."""
    engine, path = _built_shop(postgres, tmp_path, monkeypatch)
    served = Served(path, extra_args=only).start(until="/profiles-metrics")
    try:
        for customer in ("1", "2", "77"):
            httpx.get(
                f"{served.url}/profiles/{customer}",
                headers={"Authorization": f"Bearer {TOKEN}"},
                timeout=10,
            )
    finally:
        served.stop()

    with engine.connect() as conn:
        counted = conn.execute(
            sa.select(metrics.c.labels, sa.func.sum(metrics.c.value))
            .where(metrics.c.metric == RESPONSES_METRIC)
            .group_by(metrics.c.labels)
        ).all()
    assert {labels: int(n) for labels, n in counted} == {
        '{"reason": "none", "source": "warehouse"}': 2,
        '{"reason": "no-profile", "source": "default"}': 1,
    }
