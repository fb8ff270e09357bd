"""Two runs' transactions on one incident: the loser counts a repeat or opens anew, never fails.

Each test holds the first transaction open and starts the second on another connection in a
thread; an event fires as the second is about to write the incident, and only then does the
first commit. On PostgreSQL the second's write waits for that commit (the unique index, the
row lock); on SQLite for the write lock.
"""

import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event

from pipewarden.alerts.announce import Raised, raise_alerts
from pipewarden.alerts.findings import PASSING, Finding
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import OPENED, RECOVERED, WORSE
from pipewarden.records.evidence import Severity
from pipewarden.records.incidents import close_incident, open_incidents, repeat_incident
from pipewarden.records.migrate import ensure_tables
from tests.alerts.support import NOW, alert_config, all_incidents, finding, outbox, raise_now

_WRITES = ("INSERT INTO PIPEWARDEN_INCIDENTS", "UPDATE PIPEWARDEN_INCIDENTS")


def _race(url: str, first: Sequence[Finding], second: Sequence[Finding]) -> tuple[Raised, Raised]:
    """`first` raised in a transaction that commits only once `second`, raised on another
    connection, is about to write an incident; both committed, what each raised."""
    config = alert_config(url)
    engine = cached_engine(url)
    ensure_tables(engine)
    writing = threading.Event()
    out: dict[str, Any] = {}

    def run_second(conn: sa.Connection) -> None:
        try:
            with conn.begin():
                out["second"] = raise_alerts(conn, config, second, NOW)
        except Exception as error:  # noqa: BLE001 - handed to the test's thread
            out["error"] = error
        finally:
            writing.set()  # never leave the first waiting, whatever happened

    with engine.connect() as a, engine.connect() as b:

        def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if statement.lstrip().upper().startswith(_WRITES):
                writing.set()

        event.listen(b, "before_cursor_execute", before)
        thread = threading.Thread(target=run_second, args=(b,))
        with a.begin():
            out["first"] = raise_alerts(a, config, first, NOW)
            thread.start()
            assert writing.wait(60), "the second transaction never reached its write"
        thread.join(60)
    assert not thread.is_alive()
    if "error" in out:
        raise out["error"]
    return out["first"], out["second"]


def test_two_runs_opening_one_incident_count_a_repeat(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    warn = finding(status="warn")
    first, second = _race(warehouse_url, [warn], [finding(), finding("customers")])
    assert [a.kind for a in first.alerts] == [OPENED]
    # the second's other work committed; its orders finding is a repeat, worse than the warn
    assert [(a.evidence.table_name, a.kind) for a in second.alerts] == [
        ("orders", WORSE),
        ("customers", OPENED),
    ]
    orders, customers = all_incidents(config)
    assert (orders.occurrences, orders.severity, orders.status) == (2, Severity.ERROR, "error")
    assert orders.closed_at is None and customers.closed_at is None
    assert second.alerts[0].incident_id == orders.id
    assert len(outbox(config)) == 3


def test_a_repeat_after_a_close_elsewhere_opens_a_new_incident(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding())
    back = finding(status="ok", verdict=PASSING)
    first, second = _race(warehouse_url, [back], [finding()])
    assert [a.kind for a in first.alerts] == [RECOVERED]
    assert [a.kind for a in second.alerts] == [OPENED]
    closed, reopened = all_incidents(config)
    assert closed.closed_at is not None and reopened.closed_at is None
    assert second.alerts[0].incident_id == reopened.id and reopened.occurrences == 1


def test_a_recovery_already_told_elsewhere_is_not_told_twice(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding())
    back = finding(status="ok", verdict=PASSING)
    first, second = _race(warehouse_url, [back], [back])
    assert [a.kind for a in first.alerts] == [RECOVERED] and second.alerts == []
    assert [a.kind for a in outbox(config)] == [OPENED, RECOVERED]


def test_updates_touch_only_an_incident_still_open(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding())
    engine = cached_engine(warehouse_url)
    with engine.connect() as conn:
        (stale,) = open_incidents(conn).values()
    with engine.begin() as conn:
        assert close_incident(conn, stale, NOW) is not None
    with engine.begin() as conn:
        assert close_incident(conn, stale, NOW) is None
        assert repeat_incident(conn, stale, "error", Severity.ERROR, NOW) is None
    (incident,) = all_incidents(config)
    assert incident.occurrences == 1
