"""Customer ids as shops write them (text keys: long, with slashes, unicode) kept and answered
whole, by the build and by `GET /profiles/{id}` (PostgreSQL and SQLite, Redis)."""

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles
from pipewarden.profiles.publish import build_and_publish
from pipewarden.serve.profiles_api import create_profiles_app
from tests.profiles.support import REDIS_URL, profile_rows, profiles_config, shop_tables

TOKEN = "send-time-token-ids-77"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = datetime.now(UTC)
#: Two ids that share their first 200 characters, a slash, unicode and a plain one.
IDS = ["x" * 300, "x" * 200 + "y" * 50, "a/b", "ü/é", "c1"]


def _text_key_shop(engine: sa.Engine) -> None:
    customers, orders = shop_tables(key=sa.Text)
    customers.metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            sa.insert(customers),
            [{"customer_id": i, "email_consent": True, "updated_at": NOW} for i in IDS],
        )
        conn.execute(
            sa.insert(orders),
            [
                {
                    "order_id": n,
                    "customer_id": i,
                    "amount": 10 * (n + 1),
                    "ordered_at": NOW,
                    "updated_at": NOW,
                }
                for n, i in enumerate(IDS)
            ],
        )


def _config(url: str, prefix: str) -> PipewardenConfig:
    fields = ["segment", "frequency", "monetary", "last_order_at", "consent"]
    api = {"token": TOKEN, "redis_url": REDIS_URL, "key_prefix": prefix, "fields": fields}
    return profiles_config(url, window="30d", api=api)


def test_a_long_customer_id_is_kept_whole(warehouse_url: str, redis_prefix: str) -> None:
    engine = make_engine(warehouse_url)
    _text_key_shop(engine)

    build_profiles(engine, _config(warehouse_url, redis_prefix))

    rows = profile_rows(engine, "customer_profiles")
    assert sorted(row["customer_id"] for row in rows) == sorted(IDS)
    assert {row["customer_id"]: row["monetary"] for row in rows}["x" * 300] == 10.0


@pytest.fixture
def client(postgres, redis_prefix: str) -> TestClient:
    """The API over the text-keyed shop on PostgreSQL, built and published to Redis."""
    url = postgres.new("pwids")
    engine = make_engine(url)
    _text_key_shop(engine)
    config = _config(url, redis_prefix)
    build_and_publish(engine, config)
    return TestClient(create_profiles_app(config))


def test_every_id_is_answered_as_the_customer_it_names(client: TestClient) -> None:

    for n, customer in enumerate(IDS):
        path = "/profiles/" + customer.replace("/", "%2F")
        answer = client.get(path, headers=AUTH)
        assert answer.status_code == 200, (customer, answer.text)
        assert answer.headers["X-Profile-Fallback"] == "none", customer
        assert answer.json()["customer_id"] == customer
        assert answer.json()["monetary"] == 10 * (n + 1)
    truncated = client.get("/profiles/" + "x" * 200, headers=AUTH)
    assert truncated.headers["X-Profile-Fallback-Reason"] == "no-profile"


def test_an_id_no_customer_can_have_is_no_profile_not_an_unreachable_warehouse(
    client: TestClient,
) -> None:

    answer = client.get("/profiles/a%00b", headers=AUTH)
    after = client.get("/profiles/c1", headers=AUTH)
    metrics = client.get("/profiles-metrics").text

    assert answer.status_code == 200
    assert answer.headers["X-Profile-Fallback"] == "default"
    assert answer.headers["X-Profile-Fallback-Reason"] == "no-profile"
    assert after.headers["X-Profile-Fallback"] == "none"
    assert 'reason="warehouse-unreachable"' not in metrics
