"""Builds refresh the cache in Redis and keep the last good snapshot (`profiles build`)."""

import json
from datetime import UTC, datetime
from pathlib import Path

import redis
import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.db.engines import make_engine
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.reconcile_runs import RepairRecord, record_repairs
from tests.events.support import free_port
from tests.profiles.support import REDIS_URL, shop_tables
from tests.profiles.test_build import _load_shop


def _config_file(tmp_path: Path, url: str, prefix: str) -> Path:
    config = {
        "warehouse": {"url": url},
        "sources": {},
        "tables": {},
        "profiles": {
            "customers": {"table": "customers", "consent": "email_consent"},
            "orders": {"table": "orders", "updated_at": "updated_at"},
            "window": "3650d",
            "segments": {"champions": "r >= 4 and f >= 4"},
            "api": {"redis_url": REDIS_URL, "key_prefix": prefix},
        },
    }
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_build_refreshes_the_changed_customers_in_redis(
    warehouse_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    path = _config_file(tmp_path, warehouse_url, redis_prefix)
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, decode_responses=True)

    first = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert first.exit_code == 0, first.output
    assert "full build" in first.output
    cached = json.loads(client.get(redis_prefix + "p:2"))
    assert cached["frequency"] == 2  # both orders of customer 2, the window being ten years
    assert json.loads(client.get(redis_prefix + "s:2")) == cached

    _, orders = shop_tables()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(orders).values(
                order_id=500, customer_id=2, amount=7, ordered_at=now, updated_at=now
            )
        )
    second = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert second.exit_code == 0, second.output
    assert "incremental build" in second.output
    assert json.loads(client.get(redis_prefix + "p:2"))["frequency"] == 3
    assert json.loads(client.get(redis_prefix + "s:2"))["frequency"] == 3
    client.close()


def test_a_customer_deleted_by_a_repair_leaves_the_profiles_and_the_cache(
    warehouse_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    path = _config_file(tmp_path, warehouse_url, redis_prefix)
    config = yaml.safe_load(path.read_text())
    config["sources"] = {"shop": {"url": warehouse_url}}
    config["tables"] = {"customers": {"source": "shop", "primary_key": ["customer_id"]}}
    config["tables"]["customers"]["cursor"] = "updated_at"
    path.write_text(yaml.safe_dump(config))
    client = redis.Redis.from_url(REDIS_URL, socket_timeout=2, decode_responses=True)
    assert CliRunner().invoke(app, ["profiles", "build", "--config", str(path)]).exit_code == 0
    assert client.get(redis_prefix + "s:2") is not None

    customers, _ = shop_tables()
    ensure_tables(engine)
    with engine.begin() as conn:  # as a reconciliation's repair deletes a row the source lost
        conn.execute(sa.delete(customers).where(customers.c.customer_id == 2))
        record_repairs(conn, "run", "customers", [RepairRecord([2], "delete", None, None)])
    second = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert second.exit_code == 0, second.output
    assert "incremental build" in second.output
    with engine.connect() as conn:
        ids = conn.execute(sa.text("SELECT customer_id FROM customer_profiles")).scalars().all()
    assert "2" not in ids and "1" in ids
    assert client.get(redis_prefix + "p:2") is None
    assert client.get(redis_prefix + "s:2") is None  # no fallback serves a deleted customer
    client.close()


def test_a_statement_the_warehouse_refuses_is_not_called_a_connection_failure(
    warehouse_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """A profile table made by hand without the profile's columns: exit 2 with the database's
    reason, not "cannot connect to …" (SQLite) nor a traceback (PostgreSQL)."""
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE TABLE customer_profiles (customer_id VARCHAR(200))"))
    path = _config_file(tmp_path, warehouse_url, redis_prefix)

    result = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert result.exit_code == 2, result.output
    assert "cannot connect" not in result.output and "last_order_at" in result.output
    engine.dispose()


def test_a_build_whose_cache_does_not_answer_says_so(
    warehouse_url: str, redis_prefix: str, tmp_path: Path
) -> None:
    """Redis gone while the build commits: exit 2 naming the build and what to run, not a
    traceback with exit 1 (which reads as failing checks)."""
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    path = _config_file(tmp_path, warehouse_url, redis_prefix)
    config = yaml.safe_load(path.read_text())
    config["profiles"]["api"]["redis_url"] = f"redis://127.0.0.1:{free_port()}/0"
    path.write_text(yaml.safe_dump(config))

    result = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    assert "build 1" in result.output and "cache did not answer" in result.output
    assert "profiles build --full" in result.output
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM pipewarden_profile_builds")).scalar()
    assert status == "ok"  # the build itself stands: only the cache is behind
    engine.dispose()


def test_a_redis_url_that_is_not_one_is_refused_at_load(tmp_path: Path) -> None:
    path = _config_file(tmp_path, "sqlite:///" + str(tmp_path / "wh.db"), "pw:")
    config = yaml.safe_load(path.read_text())
    config["profiles"]["api"]["redis_url"] = "http://127.0.0.1:6379"
    path.write_text(yaml.safe_dump(config))

    result = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert result.exit_code == 2, result.output
    assert "profiles.api.redis_url" in result.output and "redis://" in result.output
