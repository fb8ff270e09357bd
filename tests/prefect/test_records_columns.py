"""A warehouse created by an older pipewarden gains the new nullable columns (flow_run_id)."""

from collections.abc import Callable

import pytest
import sqlalchemy as sa

from pipewarden.records.tables import add_missing_columns, ensure_tables

NEW = ["pipewarden_sync_runs", "pipewarden_check_results", "pipewarden_reconcile_runs"]


@pytest.fixture(params=["postgresql", "sqlite"])
def old_warehouse(request: pytest.FixtureRequest, sqlite_url: Callable[[str], str]) -> str:
    """pipewarden's tables as they were before flow_run_id."""
    if request.param == "postgresql":
        url = str(request.getfixturevalue("postgres").new("pwcols"))
    else:
        url = sqlite_url("old")
    engine = sa.create_engine(url)
    ensure_tables(engine)
    with engine.begin() as conn:
        for table in NEW:
            conn.execute(sa.text(f"ALTER TABLE {table} DROP COLUMN flow_run_id"))
    engine.dispose()
    return url


def test_missing_nullable_columns_are_added_once(old_warehouse: str) -> None:
    engine = sa.create_engine(old_warehouse)
    try:
        assert sorted(add_missing_columns(engine)) == sorted(f"{t}.flow_run_id" for t in NEW)
        assert add_missing_columns(engine) == []
        inspector = sa.inspect(engine)
        for table in NEW:
            column = {c["name"]: c for c in inspector.get_columns(table)}["flow_run_id"]
            assert column["nullable"]
        with engine.begin() as conn:
            conn.execute(
                sa.text(
                    "INSERT INTO pipewarden_reconcile_runs (run_id, table_name, started_at, "
                    "status, action, keys_only, rows_compared, complete, missing, extra, "
                    "changed, repaired, flow_run_id) VALUES ('r', 't', CURRENT_TIMESTAMP, "
                    "'clean', 'dry-run', false, 0, true, 0, 0, 0, 0, 'f')"
                )
            )
    finally:
        engine.dispose()
