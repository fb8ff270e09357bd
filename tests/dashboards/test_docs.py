"""The README's read-only role is the one `pipewarden dashboards reader-sql` prints."""

from pathlib import Path

from pipewarden.dashboards.reader_role import reader_role_sql


def test_the_readme_shows_the_role_as_reader_sql_prints_it():
    readme = (Path(__file__).parents[2] / "README.md").read_text(encoding="utf-8")
    for statement in reader_role_sql("warehouse"):
        assert f"{statement};" in readme
