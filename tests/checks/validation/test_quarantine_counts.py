"""Each quarantined row counts once: a lookback re-reading held rows is no new quarantine.

PostgreSQL and MariaDB sources, PostgreSQL and SQLite warehouses: the run records, the
`rows_quarantined` metric the anomaly detector reads, and the run's check failures.
"""

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pipewarden.records.metrics import history
from tests.checks.validation.support import (
    BASE,
    ORDERS,
    balanced,
    held,
    make_config,
    make_source,
    order,
    query,
    with_engine,
)

SCHEMA = {"schema": "pipewarden.checks.schemas.shop:Orders"}


def _quarantined_points(warehouse: str) -> list[float]:
    def read(engine: sa.Engine) -> list[float]:
        with engine.connect() as conn:
            return history(conn, "orders", "rows_quarantined", labels=None)[1]

    return with_engine(warehouse, read)


@pytest.mark.parametrize("source_kind", ["postgresql", "mariadb"])
def test_held_rows_read_again_are_not_quarantined_again(
    source_kind: str, make_url: Callable[[str, str], str], warehouse_url: str
) -> None:
    from tests.checks.validation.support import sync

    source = make_url(source_kind, "shop")
    engine = make_source(
        source, ORDERS, [order(1), order(2, status="lost"), order(3, currency="XYZ"), order(4)]
    )
    config = make_config(source, warehouse_url, lookback="1d", **SCHEMA)

    runs = [sync(config) for _ in range(4)]  # nothing new after the first: the lookback re-reads

    assert [r.rows_quarantined for r in runs] == [2, 0, 0, 0]
    assert [r.rows_read for r in runs] == [4, 4, 4, 4]
    assert [r.rows_unchanged for r in runs[1:]] == [4, 4, 4]
    assert all(balanced(r) for r in runs)
    assert _quarantined_points(warehouse_url) == [2.0, 0.0, 0.0, 0.0]
    failures = query(
        warehouse_url,
        "SELECT run_id, SUM(failures) FROM pipewarden_check_failures GROUP BY run_id",
    )
    assert failures == [(runs[0].run_id, 2)]
    assert len(held(warehouse_url)) == 2

    # A held row that changes and is still bad is new quarantine: counted, once.
    with engine.begin() as conn:
        conn.execute(
            ORDERS.update()
            .where(ORDERS.c.order_id == 2)
            .values(status="gone", updated_at=BASE.replace(hour=13))
        )
    changed, again = sync(config), sync(config)
    engine.dispose()
    assert (changed.rows_quarantined, again.rows_quarantined) == (1, 0)
    assert balanced(changed) and balanced(again)
    assert sorted((e.status, e.row["status"]) for e in held(warehouse_url, status=None)) == [
        ("held", "gone"),
        ("held", "paid"),
        ("superseded", "lost"),
    ]
