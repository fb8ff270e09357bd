"""`GET /profiles/{id}` against PostgreSQL and Redis: auth, cache, ETag, fallbacks, metrics."""

from datetime import UTC, datetime, timedelta

import pytest
import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import make_engine
from pipewarden.profiles.publish import build_and_publish
from pipewarden.serve.profiles_api import create_profiles_app
from tests.events.support import free_port
from tests.profiles.support import REDIS_URL, profiles_config, shop_tables
from tests.profiles.test_build import _load_shop

TOKEN = "send-time-token-5d2c"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _config(url: str, prefix: str, **api: object) -> PipewardenConfig:
    return profiles_config(
        url,
        window="3650d",
        api={
            "token": TOKEN,
            "redis_url": REDIS_URL,
            "key_prefix": prefix,
            "fields": ["segment", "frequency", "consent"],
            "default_profile": {"segment": "newcomer"},
            **api,
        },
    )


@pytest.fixture
def shop(postgres, redis_prefix: str) -> tuple[sa.Engine, PipewardenConfig]:
    url = postgres.new("pwapi")
    engine = make_engine(url)
    _load_shop(engine)
    config = _config(url, redis_prefix)
    build_and_publish(engine, config)
    return engine, config


def _closed_port_config(config: PipewardenConfig, prefix: str) -> PipewardenConfig:
    return _config(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", prefix)


def test_a_request_without_the_right_token_is_refused(shop) -> None:
    client = TestClient(create_profiles_app(shop[1]))

    assert client.get("/profiles/1").status_code == 401
    assert client.get("/profiles/1", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/profiles/1", headers={"Authorization": TOKEN}).status_code == 401
    assert client.get("/profiles/1", headers=AUTH).status_code == 200


def test_the_scheme_is_case_insensitive_and_the_token_is_not(shop) -> None:
    """RFC 9110: the scheme is a case-insensitive token; clients send "bearer" too."""
    client = TestClient(create_profiles_app(shop[1]))

    def status(header: str) -> int:
        return client.get("/profiles/1", headers={"Authorization": header}).status_code

    assert status(f"bearer {TOKEN}") == 200
    assert status(f"BEARER  {TOKEN}") == 200
    assert status(f"Bearer {TOKEN.upper()}") == 401
    assert status(f"Bearer {TOKEN} extra") == 401
    assert status(f"Basic {TOKEN}") == 401
    assert status(f"Bearer{TOKEN}") == 401


def test_without_a_token_the_api_does_not_start(shop, redis_prefix: str) -> None:
    config = _config(shop[1].warehouse.url, redis_prefix, token=None)
    with pytest.raises(ValueError, match="profiles.api.token is not set"):
        create_profiles_app(config)


def test_the_projection_etag_and_cache(shop, redis_prefix: str) -> None:
    engine, config = shop
    redis.Redis.from_url(REDIS_URL).delete(redis_prefix + "p:3")  # only the snapshot is left
    client = TestClient(create_profiles_app(config))

    first = client.get("/profiles/3", headers=AUTH)
    again = client.get("/profiles/3", headers=AUTH)
    unchanged = client.get("/profiles/3", headers={**AUTH, "If-None-Match": first.headers["ETag"]})

    assert first.json() == {
        "customer_id": "3",
        "segment": "at_risk",  # every order counts in ten years: r = 2, m = 3
        "frequency": 2,
        "consent": True,
    }
    assert first.headers["X-Profile-Source"] == "warehouse"
    assert again.headers["X-Profile-Source"] == "cache"
    assert again.json() == first.json() and again.headers["ETag"] == first.headers["ETag"]
    assert first.headers["X-Profile-Fallback"] == "none"
    assert int(first.headers["X-Data-Age"]) >= 0
    assert unchanged.status_code == 304


def test_the_warehouse_and_the_cache_answer_the_same_body(shop, redis_prefix: str) -> None:
    engine, _ = shop
    fields = ["segment", "frequency", "monetary", "last_order_at", "r", "m", "consent"]
    config = _config(engine.url.render_as_string(False), redis_prefix, fields=fields)
    redis.Redis.from_url(REDIS_URL).delete(redis_prefix + "p:3")
    client = TestClient(create_profiles_app(config))

    read = client.get("/profiles/3", headers=AUTH)
    cached = client.get("/profiles/3", headers=AUTH)

    assert (read.headers["X-Profile-Source"], cached.headers["X-Profile-Source"]) == (
        "warehouse",
        "cache",
    )
    assert read.json()["monetary"] == 600  # a number either way, as templates compute with it
    assert read.content == cached.content
    assert read.headers["ETag"] == cached.headers["ETag"]


def test_a_build_refreshes_what_the_api_serves_from_cache(shop) -> None:
    engine, config = shop
    client = TestClient(create_profiles_app(config))
    assert client.get("/profiles/6", headers=AUTH).json()["frequency"] == 0
    _, orders = shop_tables()
    now = datetime.now(UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(orders).values(
                order_id=900, customer_id=6, amount=15, ordered_at=now, updated_at=now
            )
        )

    build_and_publish(engine, config)
    answer = client.get("/profiles/6", headers=AUTH)

    assert answer.headers["X-Profile-Source"] == "cache"
    assert answer.json()["frequency"] == 1


def test_an_unreachable_warehouse_serves_the_snapshot_or_the_default_marked(
    shop, redis_prefix: str
) -> None:
    client = TestClient(create_profiles_app(_closed_port_config(shop[1], redis_prefix)))

    kept = client.get("/profiles/1", headers=AUTH)
    unknown = client.get("/profiles/77", headers=AUTH)
    metrics = client.get("/profiles-metrics").text

    assert kept.status_code == 200 and kept.json()["segment"] == "champions"
    assert kept.headers["X-Profile-Fallback"] == "snapshot"
    assert kept.headers["X-Profile-Fallback-Reason"] == "warehouse-unreachable"
    assert "X-Data-Age" in kept.headers
    assert unknown.json() == {
        "customer_id": "77",
        "segment": "newcomer",
        "frequency": None,
        "consent": None,
    }
    assert unknown.headers["X-Profile-Fallback"] == "default"
    assert (
        'pipewarden_profile_responses_total{reason="warehouse-unreachable",source="snapshot"} 1.0'
        in metrics
    )
    assert (
        'pipewarden_profile_responses_total{reason="warehouse-unreachable",source="default"} 1.0'
        in metrics
    )


def test_failing_profile_checks_serve_the_last_good_snapshot(shop) -> None:
    engine, config = shop
    customers, _ = shop_tables()
    with engine.begin() as conn:  # a customer the incremental build cannot see: checks fail
        conn.execute(
            sa.insert(customers).values(
                customer_id=40, email_consent=True, updated_at=datetime(2000, 1, 1, tzinfo=UTC)
            )
        )
        conn.execute(
            sa.update(customers)
            .where(customers.c.customer_id == 1)
            .values(email_consent=False, updated_at=datetime.now(UTC))
        )
    result = build_and_publish(engine, config)
    assert result.status == "failed" and "6 profiles for 7 customers" in result.problems[0]
    client = TestClient(create_profiles_app(config))

    answer = client.get("/profiles/1", headers=AUTH)

    assert answer.headers["X-Profile-Fallback"] == "snapshot"
    assert answer.headers["X-Profile-Fallback-Reason"] == "checks-failing"
    assert answer.json()["consent"] is True  # the good build's, not the failed one's


def test_past_the_error_sla_the_snapshot_is_served(shop, redis_prefix: str) -> None:
    config = _config(shop[1].warehouse.url, redis_prefix)
    late = config.model_copy(
        update={"profiles": config.profiles.model_copy(update={"error_after": timedelta(0)})}  # type: ignore[union-attr]
    )
    answer = TestClient(create_profiles_app(late)).get("/profiles/2", headers=AUTH)

    assert answer.headers["X-Profile-Fallback-Reason"] == "past-error-sla"
    assert answer.json()["segment"] == "big_spenders"  # its order of June 2 counts now


def test_a_customer_without_a_profile_gets_the_default_marked(shop) -> None:
    answer = TestClient(create_profiles_app(shop[1])).get("/profiles/nobody", headers=AUTH)

    assert answer.status_code == 200
    assert answer.json()["segment"] == "newcomer"
    assert (answer.headers["X-Profile-Fallback"], answer.headers["X-Profile-Fallback-Reason"]) == (
        "default",
        "no-profile",
    )
