"""The recorded owners: written where they changed, left alone where they did not."""

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from pipewarden.config.owners import owner_name
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.table_owners import Owner, owners_of, record_owners, table_owners


def test_owners_are_written_once_and_again_only_when_they_change(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'wh.sqlite'}")
    ensure_tables(engine)
    first = datetime(2026, 1, 1, tzinfo=UTC)
    shop, nobody = Owner("#shop-data", "#shop-data"), Owner(None, None)
    with engine.begin() as conn:
        assert record_owners(conn, {"orders": shop, "events": nobody}, first) == 2
        assert record_owners(conn, {"orders": shop, "events": nobody}, first + timedelta(1)) == 0
        crm = Owner("#crm", "#crm")
        assert record_owners(conn, {"orders": crm}, first + timedelta(2)) == 1
        assert owners_of(conn) == {"orders": crm, "events": nobody}
        since = dict(conn.execute(sa.select(table_owners.c.table_name, table_owners.c.since)).all())
    assert since["orders"].replace(tzinfo=UTC) == first + timedelta(2)
    assert since["events"].replace(tzinfo=UTC) == first
    engine.dispose()


def test_an_owner_is_shown_as_configured_and_a_blank_one_is_none():
    assert owner_name("#shop-data") == "#shop-data"
    assert owner_name("  ") is None and owner_name(None) is None
