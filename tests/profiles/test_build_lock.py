"""Builds of one profile table run one at a time; a build that cannot get its turn says why
(PostgreSQL and SQLite)."""

import threading
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import BuildResult, build_profiles
from pipewarden.profiles.build_lock import BuildLocked, build_lock
from pipewarden.profiles.cache import MemoryCache
from pipewarden.profiles.publish import build_checked
from tests.profiles.support import profiles_config, profiles_data
from tests.profiles.test_build import _load_shop


def test_two_first_builds_at_once_both_finish(warehouse_url: str) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    config = profiles_config(warehouse_url)
    start = threading.Barrier(2)
    results: list[BuildResult] = []
    errors: list[BaseException] = []

    def build() -> None:
        start.wait()
        try:
            results.append(build_profiles(engine, config, full=True))
        except BaseException as error:  # noqa: BLE001 - the test reports any failure
            errors.append(error)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    assert sorted(r.status for r in results) == ["ok", "ok"]
    assert results[0].build_id != results[1].build_id


def test_a_build_gives_up_naming_the_other_build(warehouse_url: str, tmp_path: Path) -> None:
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    data = {**profiles_data(warehouse_url), "timeouts": {"run_lock": "0s"}}
    path = tmp_path / "pipewarden.yaml"
    path.write_text(yaml.safe_dump(data))
    config = profiles_config(warehouse_url)

    with build_lock(engine, config, "customer_profiles"):
        try:
            no_wait = config.timeouts.model_copy(update={"run_lock": timedelta(0)})
            build_profiles(engine, config.model_copy(update={"timeouts": no_wait}))
        except BuildLocked as error:
            refused = str(error)
        else:
            raise AssertionError("a second build ran while the first held the lock")
        cli = CliRunner().invoke(app, ["profiles", "build", "--config", str(path)])

    assert "another build of profile table 'customer_profiles' is running" in refused
    assert "timeouts.run_lock" in refused
    assert cli.exit_code == 2, cli.output
    assert "another build of profile table" in cli.output
    assert "duplicate" not in cli.output.lower()
    assert not sa.inspect(engine).has_table("customer_profiles")  # nothing was built
    build_profiles(engine, config)  # the lock released, a build runs
    assert sa.inspect(engine).has_table("customer_profiles")


class _PausingCache(MemoryCache):
    """A cache whose first refresh waits until the test has tried a second build."""

    def __init__(self) -> None:
        super().__init__(60)
        self.publishing = threading.Event()
        self.tried = threading.Event()

    def put(self, profiles: Iterable[dict[str, Any]], snapshot: bool = False) -> None:
        self.publishing.set()
        self.tried.wait(timeout=120)
        super().put(profiles, snapshot)


def test_a_build_keeps_its_lock_until_its_cache_refresh_is_done(warehouse_url: str) -> None:
    """A second build that committed and published while the first was still refreshing the
    cache would be overwritten there by the first's older profiles: it must wait its turn."""
    engine = make_engine(warehouse_url)
    _load_shop(engine)
    config = profiles_config(warehouse_url)
    cache = _PausingCache()
    first: list[BuildResult] = []
    worker = threading.Thread(
        target=lambda: first.append(build_checked(engine, config, cache=cache)[0])
    )
    worker.start()
    try:
        assert cache.publishing.wait(timeout=120), "the first build never refreshed the cache"
        no_wait = config.timeouts.model_copy(update={"run_lock": timedelta(0)})
        try:
            build_profiles(engine, config.model_copy(update={"timeouts": no_wait}))
        except BuildLocked:
            pass
        else:
            raise AssertionError("a build ran while another was refreshing the cache")
    finally:
        cache.tried.set()
        worker.join()
    assert [r.status for r in first] == ["ok"]
    assert build_profiles(engine, config).build_id > first[0].build_id  # released after
