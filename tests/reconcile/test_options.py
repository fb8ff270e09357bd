"""Reconcile options that would compare nothing (or less than they say) are refused, by name."""

import pytest
import sqlalchemy as sa
import typer
from typer.testing import CliRunner

from pipewarden.cli.reconcile import reconcile
from pipewarden.config.load import parse_config
from pipewarden.reconcile.diff import DiffOptions, diff_table
from pipewarden.records.reconcile_runs import reconcile_runs
from tests.reconcile.support import config_file, one_table

app = typer.Typer()
app.command()(reconcile)


def _table(url: str, key_type: sa.types.TypeEngine, keys: list[object]) -> None:
    engine = sa.create_engine(url)
    table = sa.Table(
        "t",
        sa.MetaData(),
        sa.Column("id", key_type, primary_key=True, autoincrement=False),
        sa.Column("v", sa.Integer),
    )
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), [{"id": k, "v": 0} for k in keys])
    engine.dispose()


@pytest.mark.parametrize(
    ("arguments", "named"),
    [
        (["--key-range", "10:5"], "--key-range"),
        (["--key-range", "2024-02-01:2024-01-01"], "--key-range"),
        (["--max-diffs", "-1"], "--max-diffs"),
        (["--max-diffs", "0"], "--max-diffs"),
        (["--max-seconds", "-1"], "--max-seconds"),
    ],
)
def test_cli_refuses_ranges_and_budgets_that_compare_nothing(
    tmp_path, sqlite_url, arguments, named
):
    source, warehouse = sqlite_url("src"), sqlite_url("wh")
    for url in (source, warehouse):
        _table(url, sa.BigInteger(), list(range(20)))
    config = config_file(tmp_path, one_table(source, warehouse))

    result = CliRunner().invoke(app, ["t", "--config", config, *arguments])

    assert result.exit_code == 2, result.output
    assert named in result.output
    # Refused before anything ran: no run recorded as if the table had been compared.
    engine = sa.create_engine(warehouse)
    with engine.connect() as conn:
        recorded = sa.inspect(conn).has_table(reconcile_runs.name)
    engine.dispose()
    assert not recorded


@pytest.mark.parametrize("setting", [
    {"max_diffs": -1}, {"max_diffs": 0}, {"max_seconds": -0.5}, {"rows_per_bucket": 0},
    {"max_buckets": 0}, {"probe_every": 0}, {"probe_run": -2}, {"stream_share": 1.5},
    {"chunk_rows": 0},
])  # fmt: skip
def test_diff_options_refuse_budgets_and_sizes_below_one(setting):
    with pytest.raises(ValueError, match=next(iter(setting))):
        DiffOptions(**setting)


@pytest.mark.parametrize("kind", ["postgresql", "mariadb", "sqlite"])
@pytest.mark.parametrize(
    ("key_type", "keys", "bounds"),
    [
        (sa.String(20), ["a", "b", "c"], ("c", "a")),
        (sa.BigInteger(), [5, 7, 10], ("10", "5")),
        (sa.Numeric(10, 2), [9.75, 10, 10.5], ("10.5", "9.75")),
        (sa.Date(), ["2024-01-01", "2024-01-02"], ("2024-01-02", "2024-01-01")),
    ],
    ids=["text", "integer", "decimal", "date"],
)
def test_an_empty_key_range_is_refused_in_the_key_type(make_url, kind, key_type, keys, bounds):
    """The engine's own check, for the flows and for text keys the CLI cannot judge."""
    source, warehouse = make_url(kind, "src"), make_url(kind, "wh")
    if isinstance(key_type, sa.Date):
        from datetime import date

        keys = [date.fromisoformat(k) for k in keys]  # type: ignore[arg-type]
    for url in (source, warehouse):
        _table(url, key_type, keys)
    config = parse_config(one_table(source, warehouse), "t.yaml")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=r"--key-range .* is empty .*key column 'id'"):
        diff_table(config, "t", DiffOptions(key_range=bounds))

    whole = diff_table(config, "t", DiffOptions(key_range=(bounds[1], bounds[0])))
    assert whole.complete and whole.rows_compared == len(keys)


def test_a_bound_that_is_not_of_the_key_type_is_named(sqlite_url):
    source, warehouse = sqlite_url("src"), sqlite_url("wh")
    for url in (source, warehouse):
        _table(url, sa.BigInteger(), [1, 2])
    config = parse_config(one_table(source, warehouse), "t.yaml")  # type: ignore[arg-type]

    with pytest.raises(ValueError, match=r"'x' is not a valid integer for key column 'id'"):
        diff_table(config, "t", DiffOptions(key_range=("x", None)))
