"""The API's answers by case and the profile table's freshness, as Prometheus scrapes them."""

from starlette.testclient import TestClient

from pipewarden.db.engines import make_engine
from pipewarden.profiles.publish import build_and_publish
from pipewarden.records.migrate import ensure_tables
from pipewarden.serve.profiles_api import create_profiles_app
from tests.profiles.test_api import AUTH, _closed_port_config, _config
from tests.profiles.test_build import _load_shop
from tests.serve.support import exporter, sample, scrape


def test_the_exporter_shows_each_answer_case_and_the_profiles_freshness(
    postgres, redis_prefix: str
) -> None:
    url = postgres.new("pwcounts")
    engine = make_engine(url)
    ensure_tables(engine)
    _load_shop(engine)
    config = _config(url, redis_prefix)
    build_and_publish(engine, config)
    table = config.profiles.table  # type: ignore[union-attr]
    app = create_profiles_app(config)
    client = TestClient(app)
    for customer in ("1", "1", "2", "77"):  # 1 and 2 were put in the cache by the build
        client.get(f"/profiles/{customer}", headers=AUTH)
    away = create_profiles_app(_closed_port_config(config, redis_prefix))
    TestClient(away).get("/profiles/3", headers=AUTH)  # the last good snapshot
    away.state.service.counts.write(away.state.service.engine)  # the warehouse is down: kept

    app.state.service.counts.write(engine)
    away.state.service.counts.write(engine)  # the warehouse is back
    with exporter(config) as target:
        got = scrape(target)
        again = scrape(target)  # each point is counted once

    def answered(source: str, reason: str, scraped: dict = got) -> float:  # type: ignore[type-arg]
        labels = {"profile_table": table, "source": source, "reason": reason}
        return sample(scraped, "pipewarden_profile_responses_total", **labels)

    assert answered("cache", "none") == 3
    assert answered("cache", "none", again) == 3
    assert answered("default", "no-profile") == 1
    assert answered("snapshot", "warehouse-unreachable") == 1
    assert sample(got, "pipewarden_profile_build_ok", profile_table=table) == 1
    assert sample(got, "pipewarden_profile_rows", profile_table=table) == 6
    assert sample(got, "pipewarden_profile_data_age_seconds", profile_table=table) > 0
    assert sample(got, "pipewarden_profile_build_age_seconds", profile_table=table) >= 0
    engine.dispose()
