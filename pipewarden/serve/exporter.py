"""The Prometheus exporter: each configured table's figures as gauges, served over HTTP; the
profile table among them (source `profiles`: its builds stand for syncs, its oldest input's
age for freshness), and the profile API's answers (`profile_figures.py`).

A scrape reads the warehouse at most once per `cache_seconds` (`figures.FigureReader`: four
queries whatever the number of tables; with profiles, two for the builds as a table's figures
and two for `ProfileReader`), whoever asks; concurrent scrapes wait for the one read. A
warehouse that cannot be read within the engine's short time limits gives `pipewarden_up 0`
and no table series, never a scrape that hangs.
"""

import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import sqlalchemy as sa
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from pipewarden.checks.monitoring.freshness import ERROR, OK, WARN, freshness_level
from pipewarden.config import PipewardenConfig
from pipewarden.config.owners import owner_name
from pipewarden.config.timeouts import Timeouts
from pipewarden.db.engines import cached_engine
from pipewarden.profiles.state import build_figures
from pipewarden.serve.figures import FigureReader, TableFigures
from pipewarden.serve.profile_figures import ProfileFigures, ProfileReader

LABELS = ["table", "source", "owner"]
SLA_STATUSES = (OK, WARN, ERROR)
#: Short limits: a scrape (Prometheus waits 10 s by default) must answer even when the
#: warehouse does not.
SCRAPE_TIMEOUTS = Timeouts(connect=3.0, statement=5.0, lock=2.0)


@dataclass
class Snapshot:
    """One read of the warehouse: the figures (empty when it failed) and when it was taken."""

    taken: float
    now: datetime
    figures: list[TableFigures] = field(default_factory=list)
    up: bool = False
    read_seconds: float = 0.0
    profiles: ProfileFigures | None = None


class TableCollector(Collector):
    """Reads the figures of the configured tables, cached for `cache_seconds`."""

    def __init__(
        self,
        config: PipewardenConfig,
        cache_seconds: float = 5.0,
        timeouts: Timeouts = SCRAPE_TIMEOUTS,
    ) -> None:
        self.config = config
        self.cache_seconds = cache_seconds
        self.timeouts = timeouts
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._reader = FigureReader()
        self._profiles = ProfileReader()
        self._tables: dict[str, _Table] = {}

    def snapshot(self) -> Snapshot:
        """The cached read while it is fresh, else a new one (one reader at a time)."""
        with self._lock:
            cached = self._snapshot
            if cached is None or time.monotonic() - cached.taken >= self.cache_seconds:
                self._snapshot = cached = self._read()
            return cached

    def _read(self) -> Snapshot:
        started = time.monotonic()
        snapshot = Snapshot(taken=started, now=datetime.now(UTC))
        try:
            engine = cached_engine(self.config.warehouse.url, self.timeouts)
            with engine.connect() as conn:
                snapshot.figures = self._reader.read(conn, self._names())
                if self.config.profiles is not None:
                    snapshot.figures[-1] = _built(snapshot.figures[-1], conn, self.config)
                    schema = self.config.warehouse.schema_name
                    snapshot.profiles = self._profiles.read(
                        conn, self.config.profiles.table, schema
                    )
            snapshot.up = True
        except Exception:  # noqa: BLE001 - any failure to read is `pipewarden_up 0`
            snapshot.up = False
        snapshot.read_seconds = time.monotonic() - started
        return snapshot

    def _names(self) -> list[str]:
        """The configured tables, then the profile table (its figures from its builds)."""
        profiles = self.config.profiles
        return [*self.config.tables, *([profiles.table] if profiles is not None else [])]

    def render(self) -> bytes:
        """The exposition of `collect()`, byte for byte, written without building a sample
        object for each of the thousands of table samples: each table's label text is escaped
        once for the collector's life, and each table's values go straight into text."""
        snap = self.snapshot()
        head = exposition(self._head(snap))
        tail = exposition(_profile_metrics(snap.profiles, snap.now)) if snap.profiles else b""
        return head + self._table_text(snap).encode() + tail

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot()
        yield from self._head(snap)
        yield from self._table_metrics(snap)
        if snap.profiles is not None:
            yield from _profile_metrics(snap.profiles, snap.now)

    def _head(self, snap: Snapshot) -> Iterator[Metric]:
        up = GaugeMetricFamily("pipewarden_up", "1 when the warehouse was read, 0 when not")
        up.add_metric([], 1.0 if snap.up else 0.0)
        yield up
        read = GaugeMetricFamily(
            "pipewarden_warehouse_read_seconds", "How long the last read of the warehouse took"
        )
        read.add_metric([], snap.read_seconds)
        yield read

    def _table_metrics(self, snap: Snapshot) -> Iterator[Metric]:
        families = {
            name: GaugeMetricFamily(f"pipewarden_table_{name}", text, labels=[*LABELS, *extra])
            for name, text, extra in TABLE_FAMILIES
        }
        for f in snap.figures:
            table = self._table(f.name)
            for name, extra, value in _table_values(f, table, snap.now):
                families[name].add_metric([*table.labels, *extra], value)
        yield from families.values()

    def _table_text(self, snap: Snapshot) -> str:
        lines: dict[str, list[str]] = {name: [] for name, _, _ in TABLE_FAMILIES}
        for f in snap.figures:
            table = self._table(f.name)
            for name, extra, value in _table_values(f, table, snap.now):
                lines[name].append(table.sample_prefix(name, extra) + _value(value))
        return "".join(
            _header(f"pipewarden_table_{name}", text, "gauge") + "".join(lines[name])
            for name, text, _ in TABLE_FAMILIES
        )

    def _table(self, name: str) -> "_Table":
        """A table's labels (the profile table's source is `profiles`) and its SLA, made
        once for the collector's life (the configuration does not change under it)."""
        known = self._tables.get(name)
        if known is not None:
            return known
        table = self.config.tables.get(name)
        if table is not None:
            labels = (name, table.source, owner_name(table.owner) or "")
            sla = (table.freshness.warn_after, table.freshness.error_after)
        else:
            spec = self.config.profiles
            assert spec is not None and spec.table == name
            labels = (name, "profiles", owner_name(spec.owner) or "")
            sla = (spec.warn_after, spec.error_after)
        text = ",".join(f'{k}="{_escape(v)}"' for k, v in zip(LABELS, labels, strict=True))
        made = self._tables[name] = _Table(list(labels), text, *sla)
        return made


@dataclass(frozen=True)
class _Table:
    labels: list[str]
    #: the labels as the exposition writes them, escaped, without the braces
    text: str
    warn_after: timedelta | None
    error_after: timedelta | None
    #: (family, extra label values) -> the sample's line up to its value
    prefixes: dict[tuple[str, tuple[str, ...]], str] = field(default_factory=dict)

    def sample_prefix(self, family: str, extra: tuple[str, ...]) -> str:
        known = self.prefixes.get((family, extra))
        if known is None:
            more = "".join(
                f',{k}="{_escape(v)}"' for k, v in zip(_EXTRA[family], extra, strict=True)
            )
            known = self.prefixes[family, extra] = (
                f"pipewarden_table_{family}{{{self.text}{more}}} "
            )
        return known


#: The table families in the order they are served: name, help, labels beside LABELS.
TABLE_FAMILIES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("freshness_seconds", "Age of the newest source row loaded", ()),
    ("staleness_seconds", "Time since the last successful sync", ()),
    ("sla_status", "1 for the table's freshness status against its SLA", ("status",)),
    ("last_sync_status", "1 for the status of the latest sync", ("status",)),
    ("sync_latency_p95_seconds", "Latency p95 of the latest sync (source to load)", ()),
    ("rows_quarantined", "Rows held in the quarantine", ()),
    ("open_incidents", "Open incidents by severity", ("severity",)),
    ("reconcile_differences_remaining", "Differences left by the latest reconciliation", ()),
    ("outbox_backlog", "Alerts waiting in the outbox", ()),
    ("outbox_oldest_waiting_seconds", "Age of the oldest alert still waiting", ()),
)
_EXTRA = {name: extra for name, _, extra in TABLE_FAMILIES}


def _table_values(
    f: TableFigures, table: _Table, now: datetime
) -> Iterator[tuple[str, tuple[str, ...], float]]:
    """One table's samples: (family, values of its extra labels, value)."""
    status, age = freshness_level(f.newest_cursor, now, table.warn_after, table.error_after)
    if age is not None:
        yield "freshness_seconds", (), age.total_seconds()
    if f.last_success is not None:
        yield "staleness_seconds", (), (now - f.last_success).total_seconds()
    for level in SLA_STATUSES:
        yield "sla_status", (level,), 1.0 if status == level else 0.0
    if f.last_sync_status is not None:
        yield "last_sync_status", (f.last_sync_status,), 1.0
    if f.last_sync_latency_p95 is not None:
        yield "sync_latency_p95_seconds", (), f.last_sync_latency_p95
    yield "rows_quarantined", (), f.rows_quarantined
    for severity, count in f.open_incidents.items():
        yield "open_incidents", (severity.label,), count
    if f.reconcile_remaining is not None:
        yield "reconcile_differences_remaining", (), f.reconcile_remaining
    yield "outbox_backlog", (), f.outbox_backlog
    if f.oldest_waiting_alert is not None:
        yield (
            "outbox_oldest_waiting_seconds",
            (),
            max(0.0, (now - f.oldest_waiting_alert).total_seconds()),
        )


def _built(figures: TableFigures, conn: sa.Connection, config: PipewardenConfig) -> TableFigures:
    """The profile table's figures: its builds stand for syncs, its data's age for the cursor."""
    built = build_figures(conn, config)
    return replace(
        figures,
        newest_cursor=built.data_as_of,
        last_sync_status=built.status,
        last_success=built.last_success,
    )


def _profile_metrics(p: ProfileFigures, now: datetime) -> Iterator[Metric]:
    """The profile table's freshness and the API's answers by case (`source`: cache,
    warehouse, snapshot, default; `reason`: why a fallback was served, else none)."""
    labels = [p.table]
    answers = CounterMetricFamily(
        "pipewarden_profile_responses",
        "Profiles the API answered, by where the answer came from and why a fallback was served",
        labels=["profile_table", "source", "reason"],
    )
    for (source, reason), count in sorted(p.responses.items()):
        answers.add_metric([*labels, source, reason], count)
    yield answers

    def gauge(name: str, text: str, value: float | None) -> Iterator[Metric]:
        if value is not None:
            family = GaugeMetricFamily(f"pipewarden_profile_{name}", text, labels=["profile_table"])
            family.add_metric(labels, value)
            yield family

    def age(instant: datetime | None) -> float | None:
        return None if instant is None else max(0.0, (now - instant).total_seconds())

    yield from gauge("built", "1 when the profile table has been built", float(p.built))
    yield from gauge(
        "build_ok",
        "1 when the last build's checks passed (else the API falls back)",
        float(p.build_ok),
    )
    yield from gauge("build_age_seconds", "Time since the last build's as-of", age(p.build_as_of))
    yield from gauge(
        "data_age_seconds",
        "Age of the oldest input's newest change the last build saw: the profiles' freshness",
        age(p.data_as_of),
    )
    yield from gauge("rows", "Profiles in the table after the last build", p.rows)


_SPECIAL = {"nan": "NaN", "inf": "+Inf", "-inf": "-Inf"}


def _value(value: float) -> str:
    """The value and the line's end, as prometheus_client writes it."""
    text = repr(float(value))
    return _SPECIAL.get(text, text) + "\n"


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _header(name: str, documentation: str, kind: str) -> str:
    doc = documentation.replace("\\", "\\\\").replace("\n", "\\n")
    return f"# HELP {name} {doc}\n# TYPE {name} {kind}\n"


def exposition(families: Iterable[Metric]) -> bytes:
    """Prometheus' text format (0.0.4), as prometheus_client writes it, in a fraction of its
    time: each distinct label set is escaped once a scrape (a table's labels repeat in each of
    its dozen families), where prometheus_client escapes every sample's labels again."""
    lines: list[str] = []
    label_text: dict[tuple[tuple[str, str], ...], str] = {}
    for family in families:
        # as prometheus_client names them in this format (gauges and counters are all we have)
        name = family.name + "_total" if family.type == "counter" else family.name
        lines.append(_header(name, family.documentation, family.type))
        for sample in family.samples:
            key = tuple(sample.labels.items())
            text = label_text.get(key)
            if text is None:
                inner = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                text = label_text[key] = "{" + inner + "}" if inner else ""
            lines.append(f"{sample.name}{text} {_value(sample.value)}")
    return "".join(lines).encode()


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        """Scrapes are not logged."""


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


def serve(
    config: PipewardenConfig, host: str, port: int, cache_seconds: float
) -> tuple[WSGIServer, threading.Thread]:
    """Serve /metrics on host:port (port 0: any free one) in a daemon thread."""
    collector = TableCollector(config, cache_seconds)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = collector.render()
        start_response("200 OK", [("Content-Type", CONTENT_TYPE_LATEST)])
        return [body]

    server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    return server, thread
