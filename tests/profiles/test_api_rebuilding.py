"""A cache miss that waits for a full build's swap past the API's lock limit is marked as such,
not as an unreachable warehouse (PostgreSQL, Redis)."""

import redis
import sqlalchemy as sa
from starlette.testclient import TestClient

from pipewarden.serve.profiles_api import create_profiles_app
from tests.profiles.support import REDIS_URL
from tests.profiles.test_api import AUTH, shop  # noqa: F401 - the fixture


def test_a_read_behind_the_swap_lock_is_marked_rebuilding(shop, redis_prefix: str) -> None:  # noqa: F811
    engine, config = shop
    client = TestClient(create_profiles_app(config))
    redis.Redis.from_url(REDIS_URL).delete(redis_prefix + "p:1")  # a miss; the snapshot stays
    assert client.get("/profiles/2", headers=AUTH).status_code == 200  # state read, table known

    with engine.connect() as holder, holder.begin():
        # What a full build holds from its swap to its commit.
        holder.execute(sa.text("LOCK TABLE customer_profiles IN ACCESS EXCLUSIVE MODE"))
        answer = client.get("/profiles/1", headers=AUTH)
    metrics = client.get("/profiles-metrics").text

    assert answer.status_code == 200 and answer.json()["segment"] == "champions"
    assert answer.headers["X-Profile-Fallback"] == "snapshot"
    assert answer.headers["X-Profile-Fallback-Reason"] == "profile-table-rebuilding"
    counted = 'pipewarden_profile_responses_total{reason="profile-table-rebuilding",'
    assert counted + 'source="snapshot"} 1.0' in metrics
