"""Reconciliation and repair of a table whose source holds values the sync cannot carry: the
rows the sync quarantined are reported as held, never a crash, never repaired into the warehouse."""

from collections.abc import Callable

import pytest

from pipewarden.reconcile.run import ReconcileOptions, reconcile_table
from tests.sync.support import PERMISSIVE, held, make_config, prepared, stamp, sync

#: Per source: its column type, a good value, the bad values a permissive source stores.
BAD = {
    "mariadb": ("naive", "2026-01-01 00:00:00", ["0000-00-00 00:00:00", "2026-00-00 10:00:00"]),
    "postgresql": ("timestamp", "2026-01-01 00:00:00+00", ["infinity", "-infinity"]),
    "sqlite": ("naive", "2026-01-01 00:00:00.000000", ["not a date", "2026-13-45"]),
}


@pytest.mark.parametrize("warehouse", ["postgresql", "sqlite"])
@pytest.mark.parametrize("source", list(BAD))
def test_rows_held_for_unreadable_values_are_reported_held_and_never_repaired(
    make_url: Callable[[str, str], str], source: str, warehouse: str
) -> None:
    kind, good, bad = BAD[source]
    rows = [
        {"order_id": 1, "status": "paid", "updated_at": stamp(1), "valid_to": good},
        {"order_id": 2, "status": "a", "updated_at": stamp(2), "valid_to": bad[0]},
        {"order_id": 3, "status": "b", "updated_at": stamp(3), "valid_to": bad[1]},
    ]
    setup = PERMISSIVE if source == "mariadb" else None
    _, src_url, wh_url = prepared(make_url, source, warehouse, rows, {"valid_to": kind}, setup)
    assert sync(src_url, wh_url, {}).rows_quarantined == 2
    config = make_config(src_url, wh_url)
    for repair in (False, True):
        report = reconcile_table(config, "orders", ReconcileOptions(repair=repair))
        assert sorted(report.held) == [(2,), (3,)]
        assert report.diff.differences == 0
        assert report.clean
    assert report.repair.upserted == 0 and report.remaining == 0
    assert len(held(wh_url)) == 2
