"""Every panel's SQL, expanded as Grafana expands it, run on a real warehouse as the read-only
role, returning what pipewarden recorded."""

import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa

from pipewarden.dashboards import catalog
from pipewarden.dashboards.reader_role import reader_role_sql
from pipewarden.db.engines import cached_engine
from tests.dashboards.support import Seeded, seed
from tests.fixtures.databases import PG_ADMIN, DatabaseFactory, _factory
from tests.fixtures.grafana_sql import TimeRange, expand
from tests.fixtures.local_server import LocalServer
from tests.fixtures.slack import FakeSlack

pytestmark = pytest.mark.postgres

UID = "warehouse-ro"
PANELS = [(d["uid"], p) for d in catalog.dashboards(UID) for p in d["panels"]]
TABLES = ["events", "orders", "orders_copy"]
#: The owner variable's values as the seeded check runs recorded them ('(none)': no owner).
OWNERS = ["#copies-data", "#shop-data", "(none)"]
Rows = list[dict[str, Any]]


@pytest.fixture(scope="module")
def pg() -> Iterator[DatabaseFactory]:
    yield from _factory(PG_ADMIN, "postgresql", "PostgreSQL at 127.0.0.1:5432")


@pytest.fixture(scope="module")
def seeded(
    pg: DatabaseFactory, tmp_path_factory: pytest.TempPathFactory, prefect_harness: None
) -> Iterator[Seeded]:
    folder = tmp_path_factory.mktemp("shop")
    with LocalServer() as server:
        slack = FakeSlack(server)
        yield seed(pg.new("pwdash"), f"sqlite:///{folder / 'shop.sqlite'}", slack.url, folder)
    server.check_handler_errors()


@pytest.fixture(scope="module")
def reader(seeded: Seeded) -> Iterator[sa.Engine]:
    """The warehouse as Grafana's read-only role sees it (created by reader_role_sql)."""
    role = f"pw_grafana_{uuid.uuid4().hex[:8]}"
    url = sa.make_url(seeded.url)
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        for statement in reader_role_sql(str(url.database), role):
            conn.exec_driver_sql(statement)
    engine = sa.create_engine(url.set(username=role, password=None))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP OWNED BY {role}")
            conn.exec_driver_sql(f"DROP ROLE {role}")
        admin.dispose()


def query(reader: sa.Engine, sql: str) -> Rows:
    with reader.connect() as conn:
        return [dict(r) for r in conn.exec_driver_sql(sql).mappings()]


def panel_rows(
    panel: dict[str, Any], seeded: Seeded, reader: sa.Engine, tables: list[str] = TABLES
) -> Rows:
    # A repeated panel runs once per value, with the variable holding that value alone.
    tables = ["orders"] if panel.get("repeat") == "table" else tables
    return query(reader, expand(panel["targets"][0]["rawSql"], {"table": tables}, span(seeded)))


def span(seeded: Seeded) -> TimeRange:
    return TimeRange(seeded.now - timedelta(hours=24), seeded.now + timedelta(minutes=10))


def series(rows: Rows) -> dict[str, list[float]]:
    out: dict[str, list[float]] = defaultdict(list)
    for r in rows:
        out[r["metric"]].append(r["value"])
    return dict(out)


def sums(rows: Rows) -> dict[str, float]:
    return {name: sum(values) for name, values in series(rows).items()}


def in_range(seeded: Seeded, metric: str) -> list[float]:
    start = seeded.now - timedelta(hours=24)
    return [p.value for p in seeded.events_history if p.metric == metric and p.measured_at >= start]


def variable(name: str) -> dict[str, Any]:
    found = [
        v for d in catalog.dashboards(UID) for v in d["templating"]["list"] if v["name"] == name
    ]
    assert len({v["query"] for v in found}) == 1, f"{name} differs between the dashboards"
    return found[0]


def variable_values(reader: sa.Engine, name: str, owners: list[str]) -> Rows:
    span = TimeRange(datetime(2000, 1, 1, tzinfo=UTC), datetime(2000, 1, 2, tzinfo=UTC))
    return query(reader, expand(variable(name)["query"], {"owner": owners}, span))


def test_the_owner_variable_lists_each_owner_by_name_and_tables_without_one(seeded, reader):
    rows = variable_values(reader, "owner", [])
    assert sorted((r["__value"], r["__text"]) for r in rows) == [
        ("#copies-data", "#copies-data"),
        ("#shop-data", "#shop-data"),
        ("(none)", "(no owner)"),
    ]


def test_the_table_variable_lists_every_table_with_metrics_of_the_chosen_owners(seeded, reader):
    def tables(owners: list[str]) -> list[str]:
        return [r["table_name"] for r in variable_values(reader, "table", owners)]

    assert tables(OWNERS) == TABLES  # All
    assert tables(["#shop-data"]) == ["orders"]
    assert tables(["#shop-data", "#copies-data"]) == ["orders", "orders_copy"]
    assert tables(["(none)"]) == ["events"]
    assert tables(["#nobody"]) == []


def test_the_owner_filters_the_panels_through_the_table_variable(seeded, reader):
    """Grafana sends a panel the table variable's values, which follow the owner: a panel
    shows the chosen owner's tables and no other."""
    shop = [r["table_name"] for r in variable_values(reader, "table", ["#copies-data"])]
    assert shop == ["orders_copy"]
    for _, panel in PANELS:
        if panel.get("repeat"):
            continue
        rows = panel_rows(panel, seeded, reader, shop)
        named = {str(r.get("table", r.get("metric"))) for r in rows}
        others = {n for n in named if n.startswith(("events", "orders")) and "orders_copy" not in n}
        assert not others, (panel["title"], others)


@pytest.mark.parametrize("uid, panel", PANELS, ids=[f"{u}:{p['title']}" for u, p in PANELS])
def test_each_panel_returns_what_pipewarden_recorded(uid, panel, seeded, reader):
    rows = panel_rows(panel, seeded, reader)
    assert rows, f"{panel['title']}: no rows"
    if panel["targets"][0]["format"] == "time_series":
        assert list(rows[0]) == ["time", "metric", "value"]
        times = [r["time"] for r in rows]
        assert times == sorted(times)
    EXPECTED[panel["title"]](rows, seeded)


ANNOTATIONS = [(d["uid"], a) for d in catalog.dashboards(UID) for a in d["annotations"]["list"]]


@pytest.mark.parametrize(
    "uid, annotation", ANNOTATIONS, ids=[f"{u}:{a['name']}" for u, a in ANNOTATIONS]
)
def test_each_annotation_marks_what_pipewarden_recorded(uid, annotation, seeded, reader):
    sql = expand(annotation["target"]["rawSql"], {"table": TABLES}, span(seeded))
    rows = query(reader, sql)
    assert rows, f"{annotation['name']}: no rows"
    assert {"time", "text", "tags"} <= set(rows[0])
    ANNOTATED[annotation["name"]](rows, seeded)


def test_the_read_only_role_reads_no_customer_data_and_writes_nothing(seeded, reader):
    denied = [
        "SELECT row_json FROM pipewarden_quarantine",
        "SELECT examples FROM pipewarden_check_failures",
        "SELECT * FROM orders",
        "SELECT * FROM pipewarden_reconcile_diffs",
        "SELECT reason FROM pipewarden_alerts",
        "SELECT details FROM pipewarden_alerts",
    ]
    for sql in denied:
        with (
            pytest.raises(sa.exc.ProgrammingError, match="permission denied"),
            reader.connect() as c,
        ):
            c.exec_driver_sql(sql)
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"), reader.connect() as c:
        c.exec_driver_sql("DELETE FROM pipewarden_metrics")
    # Read-only is only the role's default, which a session may lift: the grants still hold.
    with pytest.raises(sa.exc.ProgrammingError, match="permission denied"), reader.connect() as c:
        c.exec_driver_sql("SET TRANSACTION READ WRITE")
        c.exec_driver_sql("DELETE FROM pipewarden_metrics")


# What each panel must show, from what the syncs, checks and reconciliations reported -------


def _tables_now(rows: Rows, s: Seeded) -> None:
    by = {r["table"]: r for r in rows}
    assert list(by) == TABLES
    checked = {(r.table_name, r.check): r for r in s.results}
    for name, status, warn, error in (
        ("orders", "error", 1800, 7200),
        ("orders_copy", "warn", 3600, 14400),
        ("events", "ok", None, None),
    ):
        row, fresh = by[name], checked[name, "freshness"]
        assert (
            (row["freshness"], row["age"]) == (status, fresh.observed) == (fresh.status, row["age"])
        )
        assert (row["warn after"], row["error after"]) == (warn, error)
    for name in ("orders", "orders_copy"):
        row, last = by[name], s.syncs[name][-1]
        assert row["last sync"] == "success" and 0 <= row["since last success"] < 600
        assert (row["latency p50"], row["latency p95"]) == (
            last.latency_p50_seconds,
            last.latency_p95_seconds,
        )
        assert (row["rows loaded"], row["rows quarantined"]) == (
            last.rows_loaded,
            last.rows_quarantined,
        )
    assert by["events"]["last sync"] is None and by["events"]["since last success"] is None


def _freshness_of_one_table(rows: Rows, s: Seeded) -> None:
    got = series(rows)
    fresh = next(r for r in s.results if (r.table_name, r.check) == ("orders", "freshness"))
    runs = len(s.check_runs)
    assert got["age at check"][-1] == fresh.observed and len(got["age at check"]) == runs
    assert (got["warn after"], got["error after"]) == ([1800.0] * runs, [7200.0] * runs)
    assert len(got["age at sync"]) == len(s.syncs["orders"])
    assert set(got) == {"age at check", "age at sync", "warn after", "error after"}


def _staleness(rows: Rows, s: Seeded) -> None:
    got = series(rows)
    assert set(got) == {"orders", "orders_copy"}  # events never synced
    # One point a check run; the first two are dated before the syncs they saw: 0.
    assert all(len(v) == len(s.check_runs) and 0 <= min(v) <= max(v) < 600 for v in got.values())


def _latency(rows: Rows, s: Seeded) -> None:
    got = series(rows)
    for name in ("orders", "orders_copy"):
        runs = [r for r in s.syncs[name] if r.latency_p50_seconds is not None]
        assert got[f"{name} p50"] == [r.latency_p50_seconds for r in runs]
        assert got[f"{name} p95"] == [r.latency_p95_seconds for r in runs]
    assert got["events p95"] == in_range(s, "latency_p95_seconds")
    assert "events p50" not in got


def _rows_loaded(rows: Rows, s: Seeded) -> None:
    assert {r["time"] % 300 for r in rows} == {0}
    expected = {}
    for name, runs in s.syncs.items():
        expected[f"{name} loaded"] = sum(r.rows_loaded for r in runs)
        expected[f"{name} quarantined"] = sum(r.rows_quarantined for r in runs)
    assert sums(rows) == expected
    assert expected["orders quarantined"] == 3


def _volume(rows: Rows, s: Seeded) -> None:
    assert {r["time"] % 3600 for r in rows} == {0}
    expected = {"events": sum(in_range(s, "rows_by_cursor_hour"))}
    for name, (full, *deltas) in s.syncs.items():
        expected[f"{name} (full load)"] = full.rows_loaded
        expected[name] = sum(delta.rows_loaded for delta in deltas)
    assert sums(rows) == expected


def _sync_runs(rows: Rows, s: Seeded) -> None:
    assert [r["time"] for r in rows] == sorted((r["time"] for r in rows), reverse=True)
    got = {(r["table"], r["status"], r["read"], r["loaded"], r["quarantined"]) for r in rows}
    assert got == {
        (r.table_name, r.status, r.rows_read, r.rows_loaded, r.rows_quarantined)
        for runs in [*s.syncs.values(), s.abandoned]
        for r in runs
    }
    assert ("orders_copy", "abandoned", 0, 0, 0) in got
    flow_runs = {r.run_id: r.flow_run_id for runs in s.syncs.values() for r in runs}
    linked = sorted(r["flow run"] for r in rows if r["flow run"])
    assert linked == sorted(v for v in flow_runs.values() if v)
    assert len(linked) == 1  # the last sync of orders_copy ran in a Prefect flow run


def _failing(s: Seeded) -> list[Any]:
    return [r for r in s.results if r.failing]


def _failing_count(rows: Rows, s: Seeded) -> None:
    assert rows == [{"failing": len(_failing(s))}]
    assert len(_failing(s)) >= 3


def _failing_now(rows: Rows, s: Seeded) -> None:
    got = {(r["table"], r["check"], r["status"]): r for r in rows}
    assert set(got) == {(r.table_name, r.check, r.status) for r in _failing(s)}
    fresh = got["orders", "freshness", "error"]
    wanted = next(r for r in _failing(s) if (r.table_name, r.check) == ("orders", "freshness"))
    assert (fresh["observed"], fresh["expected low"], fresh["expected high"]) == (
        wanted.observed,
        0.0,
        1800.0,
    )
    assert fresh["reason"] == wanted.reason and "over error_after" in fresh["reason"]
    assert ("orders_copy", "freshness", "warn") in got
    assert ("events", "anomaly:rows_by_cursor_hour", "anomaly") in got


def _failing_by_status(rows: Rows, s: Seeded) -> None:
    every = [r for run in s.check_runs for r in run if r.failing]
    assert sums(rows) == dict(Counter(r.status for r in every))


def _anomalies(rows: Rows, s: Seeded) -> None:
    got = [(r["table"], r["check"], r["observed"], r["expected high"], r["time"]) for r in rows]
    flagged = [r for r in s.results if r.status == "anomaly"]
    assert sorted(got) == sorted(
        (r.table_name, r.check, r.observed, r.expected_high, r.observed_at) for r in flagged
    )
    spike = next(r for r in rows if r["check"] == "anomaly:rows_by_cursor_hour")
    assert spike["observed"] == 4000.0 and spike["expected high"] < 4000.0


def _reconciled(rows: Rows, s: Seeded) -> None:
    expected = {}
    for name, report in s.reconciles.items():
        diff = report.diff
        expected[f"{name} found"] = len(diff.missing) + len(diff.extra) + len(diff.changed)
        expected[f"{name} repaired"] = report.repair.upserted + report.repair.deleted
    assert sums(rows) == expected
    assert (expected["orders found"], expected["orders repaired"]) == (3, 3)


def _reconcile_runs(rows: Rows, s: Seeded) -> None:
    got = {
        r["table"]: (
            r["action"],
            r["status"],
            r["missing"],
            r["extra"],
            r["changed"],
            r["repaired"],
        )
        for r in rows
    }
    assert got == {
        "orders": ("repair", "clean", 1, 1, 1, 3),
        "orders_copy": ("dry-run", "clean", 0, 0, 0, 0),
    }


def _quarantine(rows: Rows, s: Seeded) -> None:
    held = sum(r.rows_quarantined for r in s.syncs["orders"])
    assert [(r["table"], r["held"], r["released"], r["superseded"]) for r in rows] == [
        ("orders", held, 0, 0)
    ]
    assert rows[0]["oldest held"] is not None


def _quarantine_reasons(rows: Rows, s: Seeded) -> None:
    got = {(r["table"], r["column"], r["check"]): r["failures"] for r in rows}
    assert got == {
        ("orders", "currency", "iso_currency"): 2,
        ("orders", "amount", "non_negative"): 1,
    }


def _verdicts(s: Seeded, table: str) -> list[tuple[datetime, str]]:
    return [
        (r.checked_at, r.status)
        for run in s.check_runs
        for r in run
        if (r.table_name, r.check) == (table, "freshness")
    ]


def _sla(rows: Rows, s: Seeded) -> None:
    end = span(s).end
    got = {r["table"]: r for r in rows}
    assert list(got) == TABLES
    for table in TABLES:
        verdicts = _verdicts(s, table)
        ends = [at for at, _ in verdicts[1:]] + [end]
        held = [((until - at).total_seconds(), st) for (at, st), until in zip(verdicts, ends)]
        total = sum(seconds for seconds, _ in held)
        ok = sum(seconds for seconds, st in held if st == "ok")
        warn = sum(seconds for seconds, st in held if st == "warn")
        row = got[table]
        assert row["judged"] == pytest.approx(total) and row["verdicts"] == len(verdicts)
        assert row["within warn"] == pytest.approx(ok / total)
        assert row["within error"] == pytest.approx((ok + warn) / total)
    # orders failed, recovered, failed again: part of the range within its SLA, not all.
    assert 0 < got["orders"]["within warn"] < 1 and got["events"]["within warn"] == 1


def _freshness_status(rows: Rows, s: Seeded) -> None:
    code = {"ok": 0, "warn": 1, "error": 2}
    assert series(rows) == {t: [code[st] for _, st in _verdicts(s, t)] for t in TABLES}
    assert series(rows)["orders"] == [2, 0, 2]


def _admin_rows(s: Seeded, sql: str) -> Rows:
    with cached_engine(s.url).connect() as conn:
        return [dict(r) for r in conn.exec_driver_sql(sql).mappings()]


def _open_incidents(rows: Rows, s: Seeded) -> None:
    opened = _admin_rows(s, "SELECT * FROM pipewarden_incidents WHERE closed_at IS NULL")
    owners = {"orders": "#shop-data", "orders_copy": "#copies-data", "events": None}
    end = span(s).end
    assert sorted((r["table"], r["check"], r["status"], r["fired"], r["owner"]) for r in rows) == (
        sorted(
            (i["table_name"], i["check"], i["status"], i["occurrences"], owners[i["table_name"]])
            for i in opened
        )
    )
    for r in rows:
        assert r["age"] == pytest.approx((end - r["opened"]).total_seconds())
    got = {(r["table"], r["check"]): r for r in rows}
    assert got["orders", "freshness"]["status"] == "error"
    # The incident of the first check run closed at the second: the open one is the third's.
    assert got["orders", "freshness"]["opened"] == s.results[0].checked_at


def _alert_delivery(rows: Rows, s: Seeded) -> None:
    outbox = _admin_rows(s, "SELECT table_name, state FROM pipewarden_alerts")
    waiting = Counter(a["table_name"] for a in outbox if a["state"] in ("pending", "sending"))
    sent = Counter(a["table_name"] for a in outbox if a["state"] == "sent")
    failed = Counter(a["table_name"] for a in outbox if a["state"] == "failed")
    got = {r["table"]: (r["sent"], r["waiting"], r["failed"]) for r in rows}
    assert got == {t: (sent[t], waiting[t], failed[t]) for t in {a["table_name"] for a in outbox}}
    # The first incidents' alerts reached Slack: the owner's channel of orders took them, that
    # of orders_copy does not exist; the last check run's wait for the next delivery.
    assert sent["orders"] >= 1 and failed["orders_copy"] >= 1 and waiting["orders"] >= 1
    assert got["orders_copy"][0] == 0


def _incident_marks(rows: Rows, s: Seeded) -> None:
    recorded = _admin_rows(s, "SELECT * FROM pipewarden_incidents")
    got = sorted((r["time"], r["timeend"], r["tags"].split(",")[1]) for r in rows)
    assert got == sorted((i["opened_at"], i["closed_at"], i["table_name"]) for i in recorded)
    # The first check run's incidents, closed by the second: regions from opening to closing.
    closed = {t for _, end, t in got if end is not None}
    assert closed == {"orders", "orders_copy"}
    assert all("resolved" in r["text"] for r in rows if r["timeend"] is not None)


def _repair_marks(rows: Rows, s: Seeded) -> None:
    report = s.reconciles["orders"]
    assert [(r["tags"], r["text"]) for r in rows] == [
        ("repair,orders", "orders: repaired 3 rows (1 missing, 1 extra, 1 changed)")
    ]
    assert report.repair.upserted + report.repair.deleted == 3


def _schema_marks(rows: Rows, s: Seeded) -> None:
    recorded = _admin_rows(s, "SELECT * FROM pipewarden_schema_changes")
    assert [(r["time"], r["tags"]) for r in rows] == [
        (c["detected_at"], f"schema,{c['table_name']}") for c in recorded
    ]
    assert [r["text"] for r in rows] == ["orders_copy: column note added"]


ANNOTATED: dict[str, Callable[[Rows, Seeded], None]] = {
    "Incidents": _incident_marks,
    "Repairs": _repair_marks,
    "Schema changes": _schema_marks,
}


EXPECTED: dict[str, Callable[[Rows, Seeded], None]] = {
    "Tables now": _tables_now,
    "Freshness of $table against its SLA": _freshness_of_one_table,
    "Time since the last successful sync": _staleness,
    "Sync latency p50 and p95": _latency,
    "Rows loaded and quarantined": _rows_loaded,
    "Rows per cursor hour": _volume,
    "Sync runs": _sync_runs,
    "Checks failing now": _failing_count,
    "Failing checks now": _failing_now,
    "Failing check results by status": _failing_by_status,
    "Anomaly history": _anomalies,
    "Reconciliation: differences found and repaired": _reconciled,
    "Reconciliation runs": _reconcile_runs,
    "Quarantine": _quarantine,
    "Quarantine reasons": _quarantine_reasons,
    "SLA compliance": _sla,
    "Freshness status": _freshness_status,
    "Open incidents": _open_incidents,
    "Alert delivery": _alert_delivery,
}
