"""An append-only table whose cursor is its own primary key (an id that only grows)."""

import pytest
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app


@pytest.mark.parametrize("source_engine", ["sqlite", "postgresql"])
@pytest.mark.parametrize("warehouse", ["sqlite", "postgresql"])
def test_a_table_whose_cursor_is_its_key_syncs_its_deltas(
    source_engine, warehouse, tmp_path, request
):
    def url(engine: str, name: str) -> str:
        if engine == "sqlite":
            return f"sqlite:///{tmp_path / name}.db"
        return request.getfixturevalue("postgres").new()

    source, target = url(source_engine, "source"), url(warehouse, "warehouse")
    src = sa.create_engine(source)
    with src.begin() as conn:
        conn.execute(sa.text("CREATE TABLE events (id INTEGER PRIMARY KEY, kind VARCHAR(20))"))
        conn.execute(sa.text("INSERT INTO events VALUES (1, 'a'), (2, 'b'), (3, 'c')"))
    config = tmp_path / "pipewarden.yaml"
    table = {"source": "app", "primary_key": ["id"], "cursor": "id", "batch_size": 2}
    config.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": target},
                "sources": {"app": {"url": source}},
                "tables": {"events": table},
            }
        )
    )
    first = CliRunner().invoke(app, ["sync", "--config", str(config)])
    assert first.exit_code == 0, first.output
    with src.begin() as conn:
        conn.execute(sa.text("INSERT INTO events VALUES (4, 'd'), (5, 'e')"))
    second = CliRunner().invoke(app, ["sync", "--config", str(config)])
    assert second.exit_code == 0, second.output
    with sa.create_engine(target).connect() as conn:
        rows = conn.execute(sa.text("SELECT id, kind FROM events ORDER BY id")).all()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e")]
    src.dispose()
