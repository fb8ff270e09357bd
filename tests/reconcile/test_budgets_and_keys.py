"""Budgets stop a run and say so; buckets work for sparse, skewed, text and composite keys."""

import pytest
import sqlalchemy as sa

from pipewarden.config.load import parse_config
from pipewarden.reconcile.diff import DiffOptions, diff_table


def _config(source_url: str, warehouse_url: str, key: list[str]):  # type: ignore[no-untyped-def]
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"src": {"url": source_url}},
            "tables": {"t": {"source": "src", "primary_key": key, "cursor": "v"}},
        },
        "t.yaml",  # type: ignore[arg-type]
    )


def _make(url: str, columns: list[sa.Column], rows: list[dict]) -> None:
    engine = sa.create_engine(url)
    table = sa.Table("t", sa.MetaData(), *columns)
    with engine.begin() as conn:
        table.create(conn)
        conn.execute(table.insert(), rows)
    engine.dispose()


def _int_table(url: str, keys: list[int], edited: set[int] = frozenset()) -> None:  # type: ignore[assignment]
    columns = [
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("v", sa.Integer),
    ]
    _make(url, columns, [{"id": k, "v": 1 if k in edited else 0} for k in keys])


SMALL = {"rows_per_bucket": 4, "probe_every": 2, "probe_run": 2, "chunk_rows": 8}


@pytest.mark.parametrize("stream_share", [0.3, 0.0], ids=["buckets", "stream"])
def test_max_diffs_stops_the_run_and_reports_coverage(sqlite_url, stream_share):
    source, target = sqlite_url("src"), sqlite_url("wh")
    keys = list(range(400))
    _int_table(source, keys)
    _int_table(target, keys, edited=set(range(0, 400, 7)))

    options = DiffOptions(max_diffs=5, stream_share=stream_share, **SMALL)
    result = diff_table(_config(source, target, ["id"]), "t", options)

    assert result.stopped_by == "max_diffs" and not result.complete
    assert 5 <= len(result.changed) <= 5
    assert 0 < result.coverage < 1


def test_max_seconds_stops_the_run_and_says_so(postgres):
    source, target = postgres.new("src"), postgres.new("wh")
    keys = list(range(2000))
    _int_table(source, keys)
    _int_table(target, keys, edited={5})

    result = diff_table(_config(source, target, ["id"]), "t", DiffOptions(max_seconds=0))

    assert result.stopped_by == "max_seconds" and not result.complete
    assert result.coverage < 1


KEY_SHAPES = {
    # sparse and skewed integers: most keys crowd near zero, a few are huge or negative
    "skewed": (
        [sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False)],
        [{"id": k} for k in [*range(300), 10**12, 10**15, -(10**14), *range(10**9, 10**9 + 50)]],
    ),
    "text": (
        [sa.Column("id", sa.String(40), primary_key=True)],
        [{"id": t} for t in ["a", "B", "é", "Z", "10", "9", "ß", "😀", "aa", "a b", "_x"]]
        + [{"id": f"user-{i:05d}"} for i in range(200)],
    ),
    "composite": (
        [
            sa.Column("region", sa.String(10), primary_key=True),
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        ],
        [{"region": r, "id": i} for r in ["eu", "us", "apac", "Eu"] for i in range(60)],
    ),
}


@pytest.mark.parametrize("shape", list(KEY_SHAPES))
@pytest.mark.parametrize(("source_kind", "warehouse_kind"), [
    ("postgresql", "postgresql"), ("mariadb", "postgresql"), ("sqlite", "sqlite"),
])  # fmt: skip
def test_key_shapes(make_url, shape, source_kind, warehouse_kind):
    key_columns, rows = KEY_SHAPES[shape]
    key = [c.name for c in key_columns]
    for row in rows:
        row["v"] = 0
    source, target = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    if source_kind == "mariadb" and shape != "skewed":
        rows = [r for r in rows if r.get("region") != "Eu"]  # case-insensitive keys collide
    _make(source, [c.copy() for c in key_columns] + [sa.Column("v", sa.Integer)], rows)
    missing, extra, changed = rows[3], rows[-2], rows[len(rows) // 2]
    copy = [dict(r) for r in rows if r is not missing]
    copy.append({**{k: (v + 7 if isinstance(v, int) else f"{v}~") for k, v in extra.items()}})
    for r in copy:
        if all(r[k] == changed[k] for k in key):
            r["v"] = 1
    _make(target, [c.copy() for c in key_columns] + [sa.Column("v", sa.Integer)], copy)

    for options in (DiffOptions(**SMALL), DiffOptions(stream_share=0.0, **SMALL)):
        result = diff_table(_config(source, target, key), "t", options)

        assert [d.key for d in result.missing] == [tuple(missing[k] for k in key)]
        assert [d.key for d in result.extra] == [tuple(copy[-1][k] for k in key)]
        assert [(d.key, d.columns) for d in result.changed] == [
            (tuple(changed[k] for k in key), ["v"])
        ]
