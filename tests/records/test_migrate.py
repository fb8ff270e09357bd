"""pipewarden's own tables through releases: a warehouse an earlier release made (from the DDL
snapshots in `snapshots/`) upgrades in place on first use and ends equal to a fresh install,
its rows kept; a new revision reaches it; two upgrades at once take turns.
PostgreSQL and SQLite: the engines a warehouse can be."""

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.db.engines import make_engine
from pipewarden.records import migrate
from pipewarden.records.migrate import UpgradeFailed, ensure_tables, upgrade, upgrade_sql
from pipewarden.records.migrations import HEAD, VERSION_TABLE, stored_version
from pipewarden.records.migrations.runner import script_directory
from tests.records.support import (
    RELEASES,
    add_rows,
    build_from_snapshot,
    describe,
    expected_rows,
    kept_rows,
)

KINDS = ["postgresql", "sqlite"]


@pytest.fixture(autouse=True)
def _first_use_in_this_process() -> None:
    """Each test's warehouses are new to the process: forget which ones were checked."""
    migrate._current.clear()


def version_of(url: str) -> str | None:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = stored_version(conn)
    engine.dispose()
    return found


def fresh_install(make_url: Callable[[str, str], str], kind: str) -> str:
    url = make_url(kind, "fresh")
    ensure_tables(make_engine(url))
    return url


def test_head_is_alembic_head() -> None:
    """`ensure_tables` compares with HEAD without Alembic: it must be the revisions' head."""
    assert script_directory().get_current_head() == HEAD


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("kind", KINDS)
def test_an_earlier_warehouse_upgrades_on_first_use(make_url, kind: str, release: str) -> None:
    url = make_url(kind, "old")
    build_from_snapshot(url, kind, release)
    add_rows(url)
    assert version_of(url) is None

    ensure_tables(make_engine(url))

    assert version_of(url) == HEAD
    assert describe(url) == describe(fresh_install(make_url, kind))
    assert kept_rows(url) == expected_rows()


@pytest.mark.parametrize("kind", KINDS)
def test_a_new_warehouse_gets_the_head_and_a_second_upgrade_does_nothing(make_url, kind) -> None:
    engine = make_engine(make_url(kind, "new"))

    created = upgrade(engine)
    again = upgrade(engine)

    assert (created.action, created.before, created.after) == ("created", None, HEAD)
    assert (again.action, again.before, again.after) == ("current", HEAD, HEAD)
    assert "nothing to do" in again.describe()


@pytest.mark.parametrize("kind", KINDS)
def test_a_users_own_alembic_version_is_left_alone(make_url, kind: str) -> None:
    url = make_url(kind, "shared")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)")
        conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('users_own_rev')")

    ensure_tables(engine)

    with engine.connect() as conn:
        assert conn.exec_driver_sql("SELECT version_num FROM alembic_version").all() == [
            ("users_own_rev",)
        ]
    assert version_of(url) == HEAD


NEXT_REVISION = '''
"""A column a future release adds, and a type SQLite cannot alter in place.

Revision ID: 9001
"""

import sqlalchemy as sa
from alembic import op

revision = "9001"
down_revision = "{head}"


def upgrade() -> None:
    with op.batch_alter_table("pipewarden_sync_runs") as batch:
        batch.add_column(sa.Column("source_rows", sa.BigInteger))
        batch.alter_column("status", type_=sa.String(40), existing_nullable=False)
        batch.create_index("ix_pipewarden_sync_runs_source_rows", ["source_rows"])


def downgrade() -> None:
    raise NotImplementedError
'''


@pytest.fixture
def next_revision(tmp_path: Path) -> Path:
    """A folder holding one revision after the head: what a future release ships."""
    folder = tmp_path / "versions"
    folder.mkdir()
    (folder / "9001_next.py").write_text(NEXT_REVISION.format(head=HEAD))
    return folder


@pytest.mark.parametrize("release", RELEASES)
@pytest.mark.parametrize("kind", KINDS)
def test_a_new_revision_reaches_an_existing_warehouse(
    make_url, next_revision: Path, kind: str, release: str
) -> None:
    url = make_url(kind, "old")
    build_from_snapshot(url, kind, release)
    add_rows(url)
    before = describe(fresh_install(make_url, kind))["pipewarden_sync_runs"]

    done = upgrade(make_engine(url), extra_versions=[next_revision])

    assert (done.action, done.before, done.after) == ("upgraded", None, "9001")
    ours = [r.revision for r in reversed(list(script_directory().walk_revisions()))]
    assert ours[-1] == HEAD
    assert [revision for revision, _ in done.applied] == [*ours, "9001"]
    assert version_of(url) == "9001"
    after = describe(url)["pipewarden_sync_runs"]
    type_, nullable, _ = after["columns"].pop("source_rows")
    assert type_ == "BIGINT" and nullable
    assert after["columns"].pop("status")[0] == "VARCHAR(40)"
    before["columns"].pop("status")
    assert after["indexes"].pop("ix_pipewarden_sync_runs_source_rows")[0] == ("source_rows",)
    assert after == before  # SQLite copied the table: its indexes and other columns came along
    assert kept_rows(url) == expected_rows()


@pytest.mark.parametrize("kind", KINDS)
def test_a_warehouse_of_a_newer_release_is_refused_by_name(make_url, kind: str) -> None:
    url = make_url(kind, "newer")
    engine = make_engine(url)
    ensure_tables(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.table(VERSION_TABLE, sa.column("version_num")).update().values(version_num="9999")
        )
    migrate._current.clear()

    with pytest.raises(UpgradeFailed, match="revision 9999, which this pipewarden does not know"):
        ensure_tables(engine)


@pytest.mark.parametrize("kind", KINDS)
def test_sql_shows_the_upgrade_and_changes_nothing(make_url, kind: str) -> None:
    url = make_url(kind, "old")
    build_from_snapshot(url, kind, "before-flow-run-id")
    engine = make_engine(url)
    layout = describe(url)

    script = upgrade_sql(engine)

    assert "ADD COLUMN flow_run_id VARCHAR(36)" in script
    assert script.count("ADD COLUMN flow_run_id") == 3
    assert f"INSERT INTO {VERSION_TABLE}" in script
    assert describe(url) == layout
    ensure_tables(engine)
    assert upgrade_sql(engine) == ""


def test_a_run_at_the_head_never_imports_alembic(sqlite_url) -> None:
    """The check every run makes reads the version row; Alembic loads only for an upgrade."""
    url = sqlite_url("current")
    ensure_tables(make_engine(url))
    program = textwrap.dedent(
        f"""
        import sys
        from pipewarden.db.engines import make_engine
        from pipewarden.records.migrate import ensure_tables
        ensure_tables(make_engine({url!r}))
        print(sorted(m for m in sys.modules if m.split(".")[0] == "alembic"))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("kind", KINDS)
def test_an_older_warehouse_gains_the_tables_and_indexes_it_lacks(make_url, kind: str) -> None:
    """Earlier releases added whole tables (the outbox, the samples) and indexes."""
    url = make_url(kind, "older")
    build_from_snapshot(url, kind, "before-flow-run-id")
    add_rows(url)
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pipewarden_column_samples")
        conn.exec_driver_sql("DROP INDEX ix_pipewarden_alerts_created")

    ensure_tables(engine)

    assert describe(url) == describe(fresh_install(make_url, kind))
    assert kept_rows(url) == expected_rows()


@pytest.mark.parametrize("kind", KINDS)
def test_the_sql_for_a_new_warehouse_builds_what_an_upgrade_does(make_url, kind: str) -> None:
    """`upgrade --sql` on an empty warehouse, run by hand (as a DBA would), leaves the tables
    and the version row an upgrade creates; the script is one transaction."""
    url = make_url(kind, "by_hand")
    script = upgrade_sql(make_engine(url))
    statements = [s.strip() for s in script.split(";\n") if s.strip()]
    assert (statements[0], statements[-1]) == ("BEGIN", "COMMIT")

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        for statement in statements[1:-1]:
            conn.exec_driver_sql(statement)
    engine.dispose()

    assert version_of(url) == HEAD
    assert describe(url) == describe(fresh_install(make_url, kind))
