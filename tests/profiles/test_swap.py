"""A full build replaces the profile table with a fresh one; what others set up on the table
(privileges, views that read it) is still there after it (PostgreSQL and SQLite)."""

from uuid import uuid4

import sqlalchemy as sa

from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles
from tests.profiles.support import profiles_config
from tests.profiles.test_build import _load_shop

TABLE = "customer_profiles"


def _count(engine: sa.Engine, name: str) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(sa.text(f"SELECT count(*) FROM {name}")) or 0)


def test_a_full_build_keeps_the_views_that_read_the_profile_table(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    config = profiles_config(warehouse_url)
    build_profiles(engine, config, full=True)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE VIEW email_audience AS SELECT customer_id FROM {TABLE}"))

    result = build_profiles(engine, config, full=True)

    assert result.status == "ok"
    assert _count(engine, "email_audience") == _count(engine, TABLE) > 0


def test_a_full_build_keeps_the_privileges_granted_on_the_profile_table(postgres) -> None:
    url = postgres.new("swapgrants")
    engine = make_engine(url)
    _load_shop(engine)
    config = profiles_config(url)
    build_profiles(engine, config, full=True)
    role = f"email_tool_{uuid4().hex[:8]}"
    with engine.begin() as conn:
        conn.execute(sa.text(f'CREATE ROLE "{role}"'))
        conn.execute(sa.text(f'GRANT SELECT ON {TABLE} TO "{role}" WITH GRANT OPTION'))
        conn.execute(sa.text(f"GRANT UPDATE ON {TABLE} TO PUBLIC"))
    try:
        assert build_profiles(engine, config, full=True).status == "ok"
        with engine.connect() as conn:
            grants = conn.execute(
                sa.text(
                    "SELECT grantee, privilege_type, is_grantable "
                    "FROM information_schema.role_table_grants "
                    "WHERE table_name = :t AND grantee IN (:r, 'PUBLIC') ORDER BY 1, 2"
                ),
                {"t": TABLE, "r": role},
            ).all()
        assert [tuple(g) for g in grants] == [("PUBLIC", "UPDATE", "NO"), (role, "SELECT", "YES")]
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f'DROP OWNED BY "{role}"'))
            conn.execute(sa.text(f'DROP ROLE "{role}"'))
        engine.dispose()
