"""The command line as people meet it: its version, help that names values in their words, and
a start that leaves the heavy libraries to the commands that need them."""

import re
import subprocess
import sys
from importlib.metadata import version

import pytest
import typer
import typer.core
from typer.testing import CliRunner

from pipewarden.cli.main import app

#: Libraries `pipewarden --help` (and so every command's start) must not import.
HEAVY = ("scipy", "pandera", "prefect", "polars", "pandas", "slack_sdk", "grafana_client")


def test_importing_the_cli_leaves_the_heavy_libraries_unloaded():
    """In a fresh interpreter: what `import pipewarden.cli.main` brought into sys.modules."""
    code = (
        "import sys, pipewarden.cli.main\n"
        f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert loaded == []


def test_version_prints_the_installed_version():
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0
    assert result.stdout.strip() == f"pipewarden {version('pipewarden')}"


def _commands(group: typer.core.TyperGroup, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command path, sub-commands of groups too (typer's groups are its own click's)."""
    found = [path]
    for name, command in group.commands.items():
        if isinstance(command, typer.core.TyperGroup):
            found += _commands(command, (*path, name))
        else:
            found.append((*path, name))
    return found


COMMANDS = _commands(typer.main.get_command(app))  # type: ignore[arg-type]


def test_every_command_and_sub_command_is_listed():
    """The top-level group builds its commands when used: all of them are still there."""
    assert len(COMMANDS) > len(typer.main.get_command(app).commands) + 1  # sub-commands too
    assert ("quarantine", "list") in COMMANDS
    assert ("status",) in COMMANDS


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "pipewarden")
def test_help_shows_no_internal_type_labels(command, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    labels = re.findall(
        r"<[a-z_\[\], ]+>|\b(?:TEXT|INTEGER|FLOAT|BOOLEAN|PATH RANGE)\b", result.output
    )
    assert labels == [], f"{' '.join(command)}: {labels}"


#: What `status --json` never needs: the batch libraries, the checks, Prefect, rich, and Alembic
#: (its tables are at head after the sync, so only their version row is read).
STATUS_HEAVY = (*HEAVY, "numpy", "pyarrow", "alembic", "rich")
#: Other commands' modules: the group imports a command's module when it runs.
OTHER_COMMANDS = ("pipewarden.cli.sync", "pipewarden.cli.alerts", "pipewarden.cli.events")
#: What a sync of a table without checks never needs: pandera (and the pandas it brings), the
#: anomaly detector, Prefect, Alembic at head; and rich with `--json` (no progress bars).
SYNC_HEAVY = ("scipy", "pandera", "pandas", "hypothesis", "prefect", "alembic", "rich")

_RUN = (
    "import sys\n"
    "from pipewarden.cli.main import app\n"
    "try:\n"
    "    app(sys.argv[2:])\n"
    "except SystemExit:\n"
    "    pass\n"
    "print('loaded:', *(m for m in sys.argv[1].split() if m in sys.modules), file=sys.stderr)\n"
)


def _run_fresh(args: list[str], watched: tuple[str, ...]) -> tuple[str, list[str]]:
    """Run `pipewarden ARGS` in a fresh interpreter: its stdout, and which of `watched` it
    imported."""
    done = subprocess.run(
        [sys.executable, "-c", _RUN, " ".join(watched), *args],
        capture_output=True,
        text=True,
        check=True,
    )
    (loaded,) = [line for line in done.stderr.splitlines() if line.startswith("loaded:")]
    return done.stdout, loaded.split()[1:]


def test_help_loads_no_database_or_configuration_library():
    """`pipewarden --help` builds its text from the commands' signatures alone."""
    out, loaded = _run_fresh(
        ["--help"], (*HEAVY, "sqlalchemy", "pydantic", "yaml", "psycopg", "alembic")
    )
    assert "status" in out
    assert loaded == []


def _synced_config(tmp_path, request, warehouse: str, table: dict[str, object]) -> str:
    """A configuration whose table `t` (a SQLite source) a sync has loaded into `warehouse`."""
    import sqlalchemy as sa
    import yaml

    source = f"sqlite:///{tmp_path / 'source.db'}"
    with sa.create_engine(source).begin() as conn:
        conn.execute(sa.text("CREATE TABLE t (id INTEGER PRIMARY KEY, at TIMESTAMP)"))
        conn.execute(sa.text("INSERT INTO t VALUES (1, '2026-01-01 00:00:00')"))
    if warehouse == "sqlite":
        target = f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        target = request.getfixturevalue("postgres").new()
    config = tmp_path / "pipewarden.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": target},
                "sources": {"src": {"url": source}},
                "tables": {"t": {"source": "src", "primary_key": ["id"], "cursor": "at", **table}},
            }
        )
    )
    synced = CliRunner().invoke(app, ["sync", "--config", str(config)])
    assert synced.exit_code == 0, synced.output
    return str(config)


@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_status_reads_a_synced_warehouse_without_the_heavy_libraries(warehouse, tmp_path, request):
    """`pipewarden status` on a warehouse a sync filled: the tables and engines it touches load
    no polars, numpy or Arrow (they come with the first batch, not with the table definitions)."""
    config = _synced_config(tmp_path, request, warehouse, {})
    out, loaded = _run_fresh(
        ["status", "--json", "--config", config], (*STATUS_HEAVY, *OTHER_COMMANDS)
    )
    assert '"tables"' in out, out
    assert loaded == []


@pytest.mark.parametrize(
    ("checks", "pandera"),
    [({}, False), ({"columns": {"id": {"between": [0, None]}}}, True)],
    ids=["without checks", "with a column check"],
)
def test_a_sync_loads_pandera_only_for_a_table_with_checks(checks, pandera, tmp_path, request):
    """A delta of a table without checks leaves pandera (and pandas) unloaded; the same table
    with a `columns:` check loads it and applies it."""
    config = _synced_config(tmp_path, request, "sqlite", checks)
    out, loaded = _run_fresh(["sync", "--json", "--config", config], SYNC_HEAVY)
    assert '"status": "success"' in out, out
    if pandera:
        assert "pandera" in loaded
    else:
        assert loaded == []
