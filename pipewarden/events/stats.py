"""What a receiver counts between two writes of its metrics, per stream.

Counts and latencies of one interval become points in `pipewarden_metrics` (table = the
stream's name), so Grafana, the freshness SLA and the anomaly checks read streams as tables:
`events_stored` by type, `events_duplicate`, `events_quarantined` and `events_rejected` by
reason, `delivery_latency_p50_seconds` / `_p95_seconds` (event time to commit), and the
newest event time (`newest_cursor_epoch`) with `freshness_seconds`. A rejected delivery that
was not signed leaves nothing but its count here.
"""

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from pipewarden.measurements.cursor import NEWEST_CURSOR
from pipewarden.records.metrics import MetricPoint

#: Latencies kept per stream and interval (a uniform sample beyond: memory stays flat).
MAX_LATENCIES = 20_000


@dataclass
class _Interval:
    stored: Counter[str] = field(default_factory=Counter)
    duplicates: int = 0
    quarantined: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)
    seen: int = 0


class StreamStats:
    """Thread-safe counters of every stream, taken out as metric points by `points`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._now: dict[str, _Interval] = defaultdict(_Interval)
        self.newest: dict[str, datetime] = {}
        self._rng = np.random.default_rng(0)

    def stored(self, stream: str, event_type: str, event_time: datetime, latency: float) -> None:
        with self._lock:
            interval = self._now[stream]
            interval.stored[event_type] += 1
            interval.seen += 1
            if len(interval.latencies) < MAX_LATENCIES:
                interval.latencies.append(latency)
            else:  # reservoir sampling
                slot = int(self._rng.integers(interval.seen))
                if slot < MAX_LATENCIES:
                    interval.latencies[slot] = latency
            if stream not in self.newest or event_time > self.newest[stream]:
                self.newest[stream] = event_time

    def duplicate(self, stream: str) -> None:
        with self._lock:
            self._now[stream].duplicates += 1

    def quarantined(self, stream: str, reason: str) -> None:
        with self._lock:
            self._now[stream].quarantined[reason] += 1

    def rejected(self, stream: str, reason: str) -> None:
        with self._lock:
            self._now[stream].rejected[reason] += 1

    def take(self) -> dict[str, _Interval]:
        """The interval's counts, cleared here (`give_back` if they could not be written)."""
        with self._lock:
            taken, self._now = dict(self._now), defaultdict(_Interval)
        return taken

    def give_back(self, taken: dict[str, _Interval]) -> None:
        with self._lock:
            for stream, old in taken.items():
                now = self._now[stream]
                now.stored.update(old.stored)
                now.quarantined.update(old.quarantined)
                now.rejected.update(old.rejected)
                now.duplicates += old.duplicates
                now.latencies = (old.latencies + now.latencies)[:MAX_LATENCIES]
                now.seen += old.seen


def points(
    taken: dict[str, _Interval], newest: dict[str, datetime], at: datetime
) -> list[MetricPoint]:
    """The metric points of one interval, measured `at`."""
    out: list[MetricPoint] = []
    for stream, interval in taken.items():
        out += [
            MetricPoint(at, stream, "events_stored", n, {"type": t})
            for t, n in interval.stored.items()
        ]
        if interval.duplicates:
            out.append(MetricPoint(at, stream, "events_duplicate", interval.duplicates))
        out += [
            MetricPoint(at, stream, "events_quarantined", n, {"reason": r})
            for r, n in interval.quarantined.items()
        ]
        out += [
            MetricPoint(at, stream, "events_rejected", n, {"reason": r})
            for r, n in interval.rejected.items()
        ]
        if interval.latencies:
            p50, p95 = np.percentile(np.asarray(interval.latencies), [50, 95])
            out.append(MetricPoint(at, stream, "delivery_latency_p50_seconds", float(p50)))
            out.append(MetricPoint(at, stream, "delivery_latency_p95_seconds", float(p95)))
    for stream, moment in newest.items():
        out.append(MetricPoint(at, stream, NEWEST_CURSOR, moment.timestamp()))
        age = max(0.0, (at - moment).total_seconds())
        out.append(MetricPoint(at, stream, "freshness_seconds", age))
    return out
