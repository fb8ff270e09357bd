"""Webhook receiver benchmark: signed requests over HTTP on 127.0.0.1 into a PostgreSQL warehouse.

Starts `pipewarden events serve` on a fresh PostgreSQL database, and from this process (uvloop,
a raw HTTP/1.1 client on keep-alive connections, every body signed before the clock starts)
measures, with the load average beside each figure:

1. throughput: `--connections` senders as fast as acknowledgements come, for `--seconds`
   (goal: at least 2,000 events/s sustained for 60 s), the receiver's memory sampled every
   second (goal: flat);
2. latency at a fixed rate (`--rate`, 1,000 events/s; open loop: a request's time counts from
   when it was due, so a stall is not hidden): request p50/p95/p99 (goal: p99 under 50 ms)
   and acknowledged-to-visible p95 (goal: under 200 ms) as seen by a reader polling the
   landing table on its own connection, beside sent-to-visible;
3. a SIGKILL of the receiver (the process this script started) under that load, a restart,
   and how many acknowledged events are missing or stored twice (goal: none).

Run: `.venv/bin/python bench/events.py [--seconds 60] [--rate 1000] [--connections 64]`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
import yaml

ADMIN = os.environ.get(
    "PIPEWARDEN_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
)
SECRET = "bench-secret-" + uuid.uuid4().hex
STREAM = "bench"


def load() -> str:
    one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} cores"


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def backend_pids(url: str, database: str) -> list[int]:
    """The PostgreSQL server processes serving the benchmark's database (this host)."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        query = sa.text(
            "SELECT pid FROM pg_stat_activity WHERE datname = :d AND pid <> pg_backend_pid()"
        )
        found = [int(row[0]) for row in conn.execute(query, {"d": database})]
    engine.dispose()
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def request_bytes(port: int, event_id: str, customer: int) -> bytes:
    body = json.dumps(
        {
            "id": event_id,
            "type": "cart.updated",
            "created_at": datetime.now(UTC).isoformat(),
            "customer_id": customer,
            "total": 42.5,
            "items": [{"sku": "SKU-1", "qty": 2}],
        }
    ).encode()
    signature = base64.b64encode(hmac.new(SECRET.encode(), body, hashlib.sha256).digest())
    head = (
        f"POST /events/{STREAM} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        f"X-Shopify-Hmac-Sha256: {signature.decode()}\r\n\r\n"
    ).encode()
    return head + body


@dataclass
class Sent:
    """What the client saw: per acknowledged event, when it was due, sent and acknowledged."""

    acked: dict[str, tuple[float, float]] = field(default_factory=dict)  # id -> (due, acked)
    latencies: list[float] = field(default_factory=list)
    refused: int = 0
    errors: int = 0


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def closed_loop(
    port: int, requests: list[tuple[str, bytes]], connections: int, seconds: float
) -> Sent:
    """Each connection sends its next request as soon as the last one is answered."""
    sent = Sent()
    stop = time.monotonic() + seconds
    it = iter(requests)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < stop:
                try:
                    event_id, request = next(it)
                except StopIteration:
                    return
                began = time.monotonic()
                status = await exchange(reader, writer, request)
                done = time.monotonic()
                if status == 200:
                    sent.acked[event_id] = (began, done)
                    sent.latencies.append(done - began)
                else:
                    sent.refused += 1
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(connections)))
    return sent


async def open_loop(
    port: int,
    requests: list[tuple[str, bytes]],
    rate: float,
    connections: int,
    on_ack: VisibilityProbe | None = None,
    tolerate_errors: bool = False,
) -> Sent:
    """Requests due at a fixed rate; a request's latency counts from when it was due."""
    sent = Sent()
    queue: asyncio.Queue[tuple[float, str, bytes] | None] = asyncio.Queue()

    async def worker() -> None:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            sent.errors += 1
            return
        while True:
            item = await queue.get()
            if item is None:
                writer.close()
                return
            due, event_id, request = item
            try:
                status = await exchange(reader, writer, request)
            except (OSError, asyncio.IncompleteReadError):
                sent.errors += 1
                if not tolerate_errors:
                    raise
                return  # the receiver died: this request was not acknowledged
            done = time.monotonic()
            if status == 200:
                sent.acked[event_id] = (due, done)
                sent.latencies.append(done - due)
                if on_ack is not None:
                    on_ack.put((event_id, due, done))
            else:
                sent.refused += 1

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    start = time.monotonic()
    for i, (event_id, request) in enumerate(requests):
        due = start + i / rate
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((due, event_id, request))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers, return_exceptions=tolerate_errors)
    return sent


class VisibilityProbe(threading.Thread):
    """A reader on its own connection: when each sampled acknowledged event becomes visible."""

    def __init__(self, url: str, every: int = 10) -> None:
        super().__init__(daemon=True)
        import queue

        self.url = url
        self.every = every
        self.pending: queue.SimpleQueue[tuple[str, float, float]] = queue.SimpleQueue()
        self.after_ack: list[float] = []
        self.after_due: list[float] = []
        self.stop = threading.Event()
        self._seen = 0

    def put(self, item: tuple[str, float, float]) -> None:
        self._seen += 1
        if self._seen % self.every == 0:
            self.pending.put(item)

    def run(self) -> None:
        import psycopg

        waiting: dict[str, tuple[float, float]] = {}
        with psycopg.connect(
            self.url.replace("postgresql+psycopg", "postgresql"), autocommit=True
        ) as conn:
            while not self.stop.is_set() or waiting:
                while not self.pending.empty():
                    event_id, due, acked = self.pending.get()
                    waiting[event_id] = (due, acked)
                if waiting:
                    ids = list(waiting)
                    rows = conn.execute(
                        "SELECT event_id FROM bench_events WHERE event_id = ANY(%s)", (ids,)
                    ).fetchall()
                    now = time.monotonic()
                    for (event_id,) in rows:
                        due, acked = waiting.pop(event_id)
                        self.after_ack.append(now - acked)
                        self.after_due.append(now - due)
                if self.stop.is_set() and waiting:
                    break
                time.sleep(0.005)  # the probe's poll interval: its resolution


class Receiver:
    def __init__(self, config_path: Path, port: int) -> None:
        self.config_path = config_path
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        pipewarden = str(Path(sys.executable).with_name("pipewarden"))
        self.proc = subprocess.Popen(
            [
                pipewarden,
                "events",
                "serve",
                "--config",
                str(self.config_path),
                "--port",
                str(self.port),
            ],
            env={**os.environ, "BENCH_WEBHOOK_SECRET": SECRET},
        )
        import httpx

        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit("the receiver exited at start")
            try:
                if (
                    httpx.get(f"http://127.0.0.1:{self.port}/health/ready", timeout=2).status_code
                    == 200
                ):
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # polling readiness, bounded by the deadline
        raise SystemExit("the receiver did not become ready in 90 s")

    def kill(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)  # this script's own child, by its pid
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=60)


def percentiles(values: list[float]) -> tuple[float, float, float]:
    p50, p95, p99 = np.percentile(np.asarray(values) * 1000, [50, 95, 99])
    return float(p50), float(p95), float(p99)


def stored(url: str) -> dict[str, int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(sa.text("SELECT event_id, count(*) FROM bench_events GROUP BY 1")).all()
    engine.dispose()
    return {r[0]: r[1] for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--rate", type=float, default=1000)
    parser.add_argument("--rate-seconds", type=float, default=30)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument(
        "--no-checks", action="store_true", help="A stream without payload checks (their cost)."
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    command = "make bench → .venv/bin/python bench/events.py " + " ".join(sys.argv[1:])
    admin = sa.create_engine(ADMIN, isolation_level="AUTOCOMMIT")
    name = f"pw_bench_events_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    folder = Path(tempfile.mkdtemp(prefix="pw-bench-events-"))
    config_path = folder / "pipewarden.yaml"
    config: dict[str, Any] = {
        "warehouse": {"url": url},
        "sources": {},
        "tables": {},
        "streams": {
            STREAM: {
                "signing": {"scheme": "shopify", "secrets": "${BENCH_WEBHOOK_SECRET}"},
                "event_types": ["cart.updated"],
                "subject": "json:customer_id",
                "landing_table": "bench_events",
                "latest_table": "bench_latest",
            }
        },
    }
    if not args.no_checks:
        config["streams"][STREAM]["fields"] = {"customer_id": "integer", "total": "float"}
        config["streams"][STREAM]["columns"] = {"total": {"between": [0, None]}}
    config_path.write_text(yaml.safe_dump(config))
    port = free_port()
    receiver = Receiver(config_path, port)
    print(f"# {command}")
    checks = "no payload checks" if args.no_checks else "payload checks on two fields"
    print(
        f"receiver: pipewarden events serve on 127.0.0.1:{port}, warehouse PostgreSQL ({name}), "
        f"{checks}"
    )
    try:
        receiver.start()
        assert receiver.proc is not None
        # 1. throughput, memory
        n = int(args.seconds * 5000) + 10_000
        requests = [(f"t{i}", request_bytes(port, f"t{i}", i % 5000)) for i in range(n)]
        print(f"\n1. throughput, {args.connections} connections, {args.seconds:.0f} s ({load()})")
        memory: list[float] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(1.0):
                memory.append(rss_mib(receiver.proc.pid))  # type: ignore[union-attr]

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        backends = backend_pids(url, name)
        cpu_before = cpu_seconds(receiver.proc.pid), sum(cpu_seconds(p) for p in backends)
        client_before = time.process_time()
        began = time.monotonic()
        sent = asyncio.run(closed_loop(port, requests, args.connections, args.seconds))
        elapsed = time.monotonic() - began
        client_cpu = time.process_time() - client_before
        receiver_cpu = cpu_seconds(receiver.proc.pid) - cpu_before[0]
        database_cpu = sum(cpu_seconds(p) for p in backends) - cpu_before[1]
        sampling.set()
        rate = len(sent.acked) / elapsed
        p50, p95, p99 = percentiles(sent.latencies)
        goal = "meets" if rate >= 2000 and args.seconds >= 60 else "MISSES"
        print(
            f"   {len(sent.acked):,} acknowledged in {elapsed:.1f} s = {rate:,.0f} events/s "
            f"({goal} the goal of 2,000/s for 60 s); refused {sent.refused}"
        )
        print(
            f"   request latency under saturation: p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            f"p99 {p99:.1f} ms"
        )
        per_event = 1000 / max(1, len(sent.acked))
        print(
            f"   CPU per acknowledged event: receiver {receiver_cpu * per_event:.3f} ms "
            f"({receiver_cpu / elapsed:.0%} of a core), "
            f"PostgreSQL {database_cpu * per_event:.3f} ms "
            f"({database_cpu / elapsed:.0%}), this client {client_cpu * per_event:.3f} ms "
            f"({client_cpu / elapsed:.0%}); the receiver alone, given one core, would take "
            f"{1000 / max(1e-9, receiver_cpu * per_event):,.0f} events/s"
        )
        half = len(memory) // 2
        if memory:
            first, last = np.mean(memory[2:half] or memory[:1]), np.mean(memory[half:])
            print(
                f"   receiver RSS: start {memory[0]:.0f} MiB, max {max(memory):.0f} MiB, "
                f"end {memory[-1]:.0f} MiB; "
                f"mean of the second half {last:.0f} vs first half {first:.0f} MiB "
                f"({'flat' if last - first < 0.1 * first else 'GROWING'})"
            )
        print(f"   ({load()} after)")
        in_db = stored(url)
        lost = [e for e in sent.acked if e not in in_db]
        print(
            f"   every acknowledged event stored: {len(lost) == 0} ({len(lost)} missing); "
            f"stored twice: {sum(1 for v in in_db.values() if v > 1)}"
        )

        # 2. latency at a fixed rate
        m = int(args.rate * args.rate_seconds)
        requests = [(f"r{i}", request_bytes(port, f"r{i}", i % 5000)) for i in range(m)]
        print(
            f"\n2. fixed rate {args.rate:,.0f} events/s for {args.rate_seconds:.0f} s, "
            f"open loop ({load()})"
        )
        probe = VisibilityProbe(url)
        probe.start()
        sent = asyncio.run(open_loop(port, requests, args.rate, args.connections, probe))
        probe.stop.set()
        probe.join(timeout=30)
        p50, p95, p99 = percentiles(sent.latencies)
        print(f"   {len(sent.acked):,} acknowledged, refused {sent.refused}")
        print(
            f"   request latency (from when due): p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
            f"p99 {p99:.1f} ms ({'meets' if p99 < 50 else 'MISSES'} p99 < 50 ms)"
        )
        _, v95, _ = percentiles(probe.after_ack)
        _, d95, _ = percentiles(probe.after_due)
        print(
            f"   acknowledged-to-visible p95 {v95:.1f} ms "
            f"({'meets' if v95 < 200 else 'MISSES'} < 200 ms; "
            f"the probe polls every 5 ms, {len(probe.after_ack)} sampled), "
            f"sent-to-visible p95 {d95:.1f} ms"
        )
        print(f"   ({load()} after)")

        # 3. SIGKILL under load
        k = int(args.rate * 10)
        requests = [(f"k{i}", request_bytes(port, f"k{i}", i % 5000)) for i in range(k)]
        print(f"\n3. SIGKILL of the receiver under {args.rate:,.0f} events/s ({load()})")
        killer = threading.Timer(4.0, receiver.kill)
        killer.start()
        sent = asyncio.run(
            open_loop(port, requests, args.rate, args.connections, tolerate_errors=True)
        )
        killer.join()
        receiver.start()
        in_db = stored(url)
        acked = set(sent.acked)
        missing = [e for e in acked if e not in in_db]
        extra = len([e for e in in_db if e.startswith("k") and e not in acked])
        twice = sum(1 for v in in_db.values() if v > 1)
        print(
            f"   {len(acked):,} acknowledged before the kill, {sent.errors} requests cut off; "
            "after a restart "
            f"{len(missing)} acknowledged events missing, {twice} stored twice "
            f"({extra} committed but unacknowledged: a sender retries them, the id absorbs them)"
        )
        print(f"   ({load()} after)")
    finally:
        receiver.stop()
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


if __name__ == "__main__":
    main()
