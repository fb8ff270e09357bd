"""An open-loop, constant-rate HTTP load generator: request i is due at start + i / rate.

Why not wrk: it is closed-loop (each connection sends when the previous answer came), so a
slow answer delays the requests behind it and is counted once: its p99 hides queueing
("coordinated omission"). wrk2 (constant rate) is not packaged in Debian. Here each latency is
measured from the moment the request was due, not from when a connection was free to send it,
so a server that falls behind shows it. It runs in a process of its own (started by the
bench), speaks HTTP/1.1 keep-alive over raw asyncio streams on uvloop (a request costs it
a few microseconds, not the server's time), and prints one JSON line.

Run: `python bench/loadgen.py URL_PATH_FILE --port N --rate 2000 --seconds 15 --header 'K: V'`
where the file lists request paths, one a line, sent in turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def request(self, raw: bytes) -> int:
        self.writer.write(raw)
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        while True:
            line = await self.reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


async def run(args: argparse.Namespace) -> dict[str, object]:
    paths = [p for p in Path(args.paths).read_text().split("\n") if p]
    headers = "".join(f"{h}\r\n" for h in args.header)
    requests = [f"GET {p} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}\r\n".encode() for p in paths]
    idle: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(args.connections):
        reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
        idle.put_nowait(Connection(reader, writer))
    total = int(args.rate * args.seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors = 0
    late = 0

    async def one(raw: bytes, due: float) -> None:
        nonlocal errors
        connection = await idle.get()
        try:
            status = await connection.request(raw)
            statuses[status] = statuses.get(status, 0) + 1
        except (OSError, ValueError, asyncio.IncompleteReadError):
            errors += 1
            reader, writer = await asyncio.open_connection("127.0.0.1", args.port)
            connection = Connection(reader, writer)
        finally:
            idle.put_nowait(connection)
        latencies.append(time.perf_counter() - due)

    tasks = []
    start = time.perf_counter() + 0.05
    for i in range(total):
        due = start + i / args.rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        elif delay < -0.005:
            late += 1  # the generator itself could not keep the schedule by more than 5 ms
        tasks.append(asyncio.ensure_future(one(requests[i % len(requests)], due)))
    await asyncio.gather(*tasks)
    elapsed = time.perf_counter() - start
    latencies.sort()
    q = statistics.quantiles(latencies, n=1000)
    return {
        "requests": total,
        "seconds": round(elapsed, 2),
        "achieved_rate": round(total / elapsed, 1),
        "p50_ms": round(q[499] * 1000, 2),
        "p90_ms": round(q[899] * 1000, 2),
        "p99_ms": round(q[989] * 1000, 2),
        "p999_ms": round(q[998] * 1000, 2),
        "max_ms": round(latencies[-1] * 1000, 2),
        "statuses": statuses,
        "errors": errors,
        "generator_late": late,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=float, default=2000)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--header", action="append", default=[])
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    print(json.dumps(asyncio.run(run(args))))


if __name__ == "__main__":
    main()
