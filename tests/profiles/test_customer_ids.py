"""Customer ids as shops write them (text keys: long, with slashes, unicode) kept and answered
whole, by the build and by `GET /profiles/{id}` (PostgreSQL and SQLite, Redis)."""

from datetime import UTC, datetime

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import make_engine
from pipewarden.profiles.build import build_profiles
from tests.profiles.support import REDIS_URL, profile_rows, profiles_config

TOKEN = "send-time-token-ids-77"
NOW = datetime.now(UTC)
#: Two ids that share their first 200 characters, a slash, unicode and a plain one.
IDS = ["x" * 300, "x" * 200 + "y" * 50, "a/b", "ü/é", "c1"]


def _text_key_shop(engine: sa.Engine) -> None:
    metadata = sa.MetaData()
    customers = sa.Table(
        "customers",
        metadata,
        sa.Column("customer_id", sa.Text, primary_key=True),
        sa.Column("email_consent", sa.Boolean, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    orders = sa.Table(
        "orders",
        metadata,
        sa.Column("order_id", sa.Integer, primary_key=True),
        sa.Column("customer_id", sa.Text, nullable=False),
        sa.Column("amount", sa.Numeric(12, 2), nullable=False),
        sa.Column("ordered_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    metadata.create_all(engine)
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
