"""A user's own Pandera model next to pipewarden.yaml, found by the CLI from any folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from pipewarden.config import ConfigError, load_config
from tests.checks.validation.support import held, warehouse_keys

PIPEWARDEN = Path(sys.executable).with_name("pipewarden")

MODEL = """
import pandera.polars as pa
import polars as pl


class Customers(pa.DataFrameModel):
    customer_id: pl.Int64 = pa.Field(nullable=False)
    email: pl.String = pa.Field(nullable=False)

    @pa.check("email", name="has_at_sign")
    def _at(cls, data):
        return data.lazyframe.select(pl.col(data.key).str.contains("@"))
"""

CONFIG = """
warehouse:
  url: sqlite:///{folder}/warehouse.sqlite
sources:
  crm:
    url: sqlite:///{folder}/crm.sqlite
{extra}
tables:
  customers:
    source: crm
    primary_key: customer_id
    cursor: updated_at
    schedule: {schedule}
    freshness: {{warn_after: {warn_after}}}
    schema: {module}:Customers
"""


def project(
    root: Path,
    module: str = "myschemas",
    schemas_path: str | None = None,
    schedule: str = "hourly",
    warn_after: str = "3h",
) -> Path:
    """A folder with pipewarden.yaml, the model's module and a CRM with one good, one bad row."""
    folder = root / "project"
    models = folder / schemas_path if schemas_path else folder
    models.mkdir(parents=True)
    (models / f"{module}.py").write_text(MODEL)
    extra = f"schemas_path: {schemas_path}" if schemas_path else ""
    config = folder / "pipewarden.yaml"
    config.write_text(
        CONFIG.format(
            folder=folder,
            extra=extra,
            module=module,
            schedule=schedule,
            warn_after=warn_after,
        )
    )
    engine = sa.create_engine(f"sqlite:///{folder}/crm.sqlite")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "CREATE TABLE customers (customer_id INTEGER PRIMARY KEY, email TEXT, "
                "updated_at DATETIME)"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO customers VALUES (1, 'ana@example.com', '2026-03-01 12:00:00'), "
                "(2, 'not an address', '2026-03-01 12:00:01')"
            )
        )
    engine.dispose()
    return config


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PIPEWARDEN_CONFIG")}
    return subprocess.run(
        [str(PIPEWARDEN), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("schemas_path", [None, "checks_of_ours"])
def test_the_cli_imports_a_model_next_to_the_config_from_another_folder(tmp_path, schemas_path):
    config = project(tmp_path, schemas_path=schemas_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    done = run_cli("sync", "--config", str(config), cwd=elsewhere)
    assert done.returncode == 1, done.stderr  # synced; a held row needs attention
    warehouse = f"sqlite:///{config.parent}/warehouse.sqlite"
    assert warehouse_keys(warehouse, "customers", "customer_id") == [1]
    [entry] = held(warehouse, "customers")
    assert entry.primary_key == {"customer_id": 2}
    assert [(r["column"], r["check"]) for r in entry.reasons] == [("email", "has_at_sign")]


def test_a_module_the_config_folder_does_not_hold_fails_by_name(tmp_path):
    config = project(tmp_path)
    text = config.read_text().replace("myschemas:Customers", "theirschemas:Customers")
    config.write_text(text)
    done = run_cli("sync", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 2
    assert "tables.customers.schema" in done.stderr and "theirschemas" in done.stderr


def test_a_schemas_path_that_is_no_folder_fails_at_load(tmp_path):
    config = project(tmp_path, schemas_path="models")
    config.write_text(config.read_text().replace("schemas_path: models", "schemas_path: modls"))
    with pytest.raises(ConfigError, match="schemas_path: .*modls is not a folder"):
        load_config(config)


def test_a_freshness_sla_the_schedule_cannot_meet_is_one_warning_of_the_cli(tmp_path):
    config = project(tmp_path, schedule="daily", warn_after="1h")
    done = run_cli("sync", "--config", str(config), cwd=tmp_path)
    assert done.returncode == 1, done.stderr  # synced; the held row needs attention
    assert done.stderr.count("tables.customers.freshness.warn_after") == 1
    assert "1h 00m is not longer than the daily schedule's interval" in done.stderr
    healthy = project(tmp_path / "healthy", schedule="hourly", warn_after="3h")
    quiet = run_cli("sync", "--config", str(healthy), cwd=tmp_path)
    assert quiet.returncode == 1 and "freshness" not in quiet.stderr
