"""`pipewarden upgrade` as a user runs it: what it did, its SQL, its failures, and two at once."""

import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from pipewarden.db.engines import make_engine
from pipewarden.dialects import dialect_for
from pipewarden.records import migrate
from pipewarden.records.migrations import HEAD, VERSION_TABLE
from tests.records.support import add_rows, build_from_snapshot, describe, kept_rows

PIPEWARDEN = str(Path(sys.executable).with_name("pipewarden"))


def write_config(tmp_path: Path, warehouse: str) -> Path:
    path = tmp_path / "pipewarden.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse},
                "sources": {"src": {"url": f"sqlite:///{tmp_path / 'src.sqlite'}"}},
                "tables": {"orders": {"source": "src", "primary_key": "id", "cursor": "at"}},
                "timeouts": {"run_lock": "2m"},
            }
        )
    )
    return path


def pipewarden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PIPEWARDEN, *args], capture_output=True, text=True, timeout=300, check=False
    )


@pytest.fixture(params=["postgresql", "sqlite"])
def old_warehouse(request: pytest.FixtureRequest, make_url) -> tuple[str, str]:
    """A warehouse as the release before `flow_run_id` left it, with a few rows."""
    url = make_url(request.param, "old")
    build_from_snapshot(url, request.param, "before-flow-run-id")
    add_rows(url)
    return request.param, url


def test_upgrade_says_what_it_did_and_sql_changes_nothing(old_warehouse, tmp_path) -> None:
    _, url = old_warehouse
    config = str(write_config(tmp_path, url))
    layout = describe(url)

    dry = pipewarden("upgrade", "--sql", "--config", config)
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("ADD COLUMN flow_run_id") == 3
    assert describe(url) == layout

    done = pipewarden("upgrade", "--config", config)
    assert done.returncode == 0, done.stderr
    assert f"upgraded pipewarden's tables from a release before migrations to {HEAD}" in (
        done.stdout
    )
    again = pipewarden("upgrade", "--config", config)
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_a_failed_upgrade_exits_2_with_the_reason(make_url, tmp_path) -> None:
    url = make_url("sqlite", "newer")
    engine = make_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.table(VERSION_TABLE, sa.column("version_num")).update().values(version_num="9999")
        )

    done = pipewarden("upgrade", "--config", str(write_config(tmp_path, url)))

    assert done.returncode == 2
    assert "revision 9999, which this pipewarden does not know" in done.stderr
    assert done.stdout == ""


def test_two_upgrades_at_once_take_turns(old_warehouse, make_url, tmp_path) -> None:
    """Both start while a third holder keeps the upgrade lock, say they wait, and when it is
    released one upgrades and the other finds nothing to do: no failure, no half work."""
    kind, url = old_warehouse
    config = str(write_config(tmp_path, url))
    engine = make_engine(url)
    with (
        engine.connect() as holder,
        dialect_for(kind).run_lock(holder, migrate._UPGRADE_LOCK, 10) as held,
    ):
        assert held
        racers = [
            subprocess.Popen(
                [PIPEWARDEN, "upgrade", "--config", config],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        for racer in racers:  # each says it waits before the holder lets go
            assert racer.stderr is not None
            assert "another process is upgrading" in racer.stderr.readline()
    outcomes = [racer.communicate(timeout=300) for racer in racers]

    assert [racer.returncode for racer in racers] == [0, 0], outcomes
    said = sorted("nothing to do" in out for out, _ in outcomes)
    assert said == [False, True], outcomes
    fresh = make_url(kind, "fresh")
    migrate.upgrade(make_engine(fresh))
    assert describe(url) == describe(fresh)
    assert kept_rows(url)["pipewarden_sync_runs"]["run_id"] == "r1"
