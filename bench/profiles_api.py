"""The send-time profile API under a constant 2,000 requests/s, served as a user serves it.

`pipewarden serve --only profiles` runs in a process of its own on 127.0.0.1 (uvicorn through
the command line), and `bench/loadgen.py` (open loop, constant rate, latency from when each
request was due; see its docstring for why not wrk) sends `GET /profiles/{id}` in another.
Cases, each on the same 20,000 customers of the bench's profile table:

* Redis cache: a first pass at 1,000/s fills the cache from the warehouse (its latency is the
  warehouse path's), then 2,000/s for 15 s from the cache; goal p99 under 5 ms;
* the in-process cache (no `redis_url`): the same;
* fallback: the warehouse at a closed port, the customers' last good snapshots in Redis;
  goal p99 under 10 ms.

Where each answer came from is read from the API's own counters (`/profiles-metrics`).
Called by `bench/profiles.py` on its filled table; alone it needs a built profile table:
`.venv/bin/python bench/profiles_api.py CONFIG.yaml CUSTOMERS` (customers 1…CUSTOMERS).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from pipewarden.config.load import load_config
from pipewarden.db.engines import make_engine
from pipewarden.profiles.cache import RedisCache
from pipewarden.profiles.tables import read_profiles

HERE = Path(__file__).parent
CUSTOMERS = 20_000
RATE = 2000
SECONDS = 15


def _load() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} cores"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _counters(port: int) -> dict[str, float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/profiles-metrics", timeout=10) as r:
        text = r.read().decode()
    found = {}
    for line in text.splitlines():
        if line.startswith("pipewarden_profile_responses_total{"):
            labels, value = line.rsplit(" ", 1)
            found[labels.split("{", 1)[1].rstrip("}")] = float(value)
    return found


class Server:
    """`pipewarden serve --only profiles` in a subprocess, waited for, stopped by its pid."""

    def __init__(self, config_path: Path) -> None:
        self.port = _free_port()
        command = [str(Path(sys.executable).parent / "pipewarden"), "serve", "--only", "profiles"]
        command += ["--config", str(config_path), "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while True:
            try:
                _counters(self.port)
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    err = self.process.stderr.read().decode() if self.process.stderr else ""
                    self.stop()
                    raise RuntimeError(f"pipewarden serve did not start: {err[-2000:]}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _generate(port: int, paths: Path, rate: float, seconds: float) -> dict[str, Any]:
    command = [sys.executable, str(HERE / "loadgen.py"), str(paths), "--port", str(port)]
    command += ["--rate", str(rate), "--seconds", str(seconds)]
    command += ["--header", "Authorization: Bearer bench-token"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _line(
    what: str, result: dict[str, Any], goal_ms: float | None, served: dict[str, float], cpu: float
) -> str:
    verdict = ""
    if goal_ms is not None:
        met = result["p99_ms"] < goal_ms and not result["errors"]
        verdict = f"  goal p99 < {goal_ms:g} ms: {'met' if met else 'MISSED'}"
    return (
        f"  {what:<34} {result['achieved_rate']:>7.0f}/s  p50 {result['p50_ms']:6.2f} ms  "
        f"p99 {result['p99_ms']:6.2f} ms  max {result['max_ms']:7.2f} ms{verdict}\n"
        f"  {'':<34} statuses {result['statuses']}, errors {result['errors']}, "
        f"generator late {result['generator_late']}, answered from {served}\n"
        f"  {'':<34} server CPU {cpu / result['requests'] * 1e6:.0f} µs a request "
        f"(one core serves ≈ {result['requests'] / cpu:,.0f}/s at most) ({_load()})"
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _delta(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


def _case(config_path: Path, paths: Path, warm: bool, goal_ms: float, what: str) -> None:
    server = Server(config_path)
    try:
        pid = server.process.pid
        if warm:
            before, cpu = _counters(server.port), _cpu_seconds(pid)
            first = _generate(server.port, paths, RATE / 2, CUSTOMERS / (RATE / 2))
            cpu = _cpu_seconds(pid) - cpu
            served = _delta(_counters(server.port), before)
            print(_line(f"{what}: first reads", first, None, served, cpu))
        before, cpu = _counters(server.port), _cpu_seconds(pid)
        result = _generate(server.port, paths, RATE, SECONDS)
        cpu = _cpu_seconds(pid) - cpu
        print(_line(what, result, goal_ms, _delta(_counters(server.port), before), cpu))
    finally:
        server.stop()


def bench_api(config_path: Path, customers: int) -> None:
    settings = yaml.safe_load(config_path.read_text())
    config = load_config(config_path)
    assert config.profiles is not None and config.profiles.api.redis_url
    ids = [str(1 + i * max(1, customers // CUSTOMERS)) for i in range(CUSTOMERS)]
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        paths = workdir / "paths.txt"
        paths.write_text("\n".join(f"/profiles/{i}" for i in ids) + "\n")
        print(
            f"\nprofile API, `pipewarden serve --only profiles` on 127.0.0.1, open-loop load at "
            f"{RATE:,}/s for {SECONDS} s over {CUSTOMERS:,} customers (bench/loadgen.py):"
        )
        _case(config_path, paths, True, 5.0, "from the Redis cache")

        memory = {**settings, "profiles": {**settings["profiles"]}}
        memory["profiles"]["api"] = {
            k: v for k, v in settings["profiles"]["api"].items() if k not in ("redis_url",)
        }
        memory_path = workdir / "memory.yaml"
        memory_path.write_text(yaml.safe_dump(memory))
        _case(memory_path, paths, True, 5.0, "from the in-process cache")

        # The last good snapshots, as a good build leaves them, then the warehouse goes away.
        engine = make_engine(config.warehouse.url)
        cache = RedisCache(config.profiles.api.redis_url, config.profiles.api.key_prefix, 3600)
        cache.put(read_profiles(engine, config, ids), snapshot=True)
        engine.dispose()
        away = {
            **settings,
            "warehouse": {"url": f"postgresql+psycopg://x@127.0.0.1:{_free_port()}/x"},
        }
        away_path = workdir / "away.yaml"
        away_path.write_text(yaml.safe_dump(away))
        _case(away_path, paths, False, 10.0, "fallback: snapshot, warehouse down")


if __name__ == "__main__":
    bench_api(Path(sys.argv[1]), int(sys.argv[2]))
