"""Sample source systems in SQLite: a CRM, a shop and web analytics, with the mess real ones have.

The mess is deliberate: mixed date formats, missing values, emails differing only in case,
duplicate customers, invalid codes, late-arriving updates, hard deletes and a column that
appears between runs. Each later stage of the demo finds some of it.
"""

import json
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import sqlalchemy as sa

FIRST = [
    "Ada",
    "Grace",
    "Alan",
    "Edsger",
    "Barbara",
    "Donald",
    "Margaret",
    "Ken",
    "Frances",
    "Linus",
    "Radia",
    "Tim",
    "Sophie",
    "Guido",
    "Anita",
    "Niklaus",
    "Hedy",
    "John",
]
LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Hamilton",
    "Thompson",
    "Allen",
    "Torvalds",
    "Perlman",
    "Berners-Lee",
    "Wilson",
    "van Rossum",
    "Borg",
    "Wirth",
]
COUNTRIES = ["DE", "FR", "GB", "US", "NL", "ES", "IT", "SE", "PL", "IE"]
CURRENCIES = {
    "DE": "EUR",
    "FR": "EUR",
    "GB": "GBP",
    "US": "USD",
    "NL": "EUR",
    "ES": "EUR",
    "IT": "EUR",
    "SE": "SEK",
    "PL": "PLN",
    "IE": "EUR",
}
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]
EVENTS = ["page_view", "add_to_cart", "checkout", "purchase", "email_open", "email_click"]
PAGES = ["/", "/sale", "/product/42", "/product/7", "/cart", "/checkout", "/account"]

metadata = sa.MetaData()
customers = sa.Table(
    "customers",
    metadata,
    sa.Column("customer_id", sa.Integer, primary_key=True),
    sa.Column("email", sa.Text),
    sa.Column("first_name", sa.Text),
    sa.Column("last_name", sa.Text),
    sa.Column("country", sa.Text),
    sa.Column("signup_date", sa.Text),
    sa.Column("marketing_opt_in", sa.Boolean),
    sa.Column("lifetime_value", sa.Numeric(12, 2)),
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, index=True),
)
orders = sa.Table(
    "orders",
    metadata,
    sa.Column("order_id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer),
    sa.Column("status", sa.Text),
    sa.Column("currency", sa.String(3)),
    sa.Column("amount", sa.Numeric(12, 2)),
    sa.Column("created_at", sa.DateTime),
    sa.Column("updated_at", sa.DateTime, index=True),
)
events = sa.Table(
    "events",
    metadata,
    sa.Column("event_id", sa.Integer, primary_key=True),
    sa.Column("customer_id", sa.Integer, nullable=True),
    sa.Column("event_type", sa.Text),
    sa.Column("url", sa.Text),
    sa.Column("occurred_at", sa.DateTime, index=True),
    sa.Column("properties", sa.Text),
)


def naive(moment: datetime) -> datetime:
    """Source systems store UTC wall-clock time without a zone, as many do."""
    return moment.astimezone(UTC).replace(tzinfo=None)


def _signup_text(rng: random.Random, moment: datetime) -> str | None:
    form = rng.random()
    if form < 0.05:
        return None
    if form < 0.08:
        return "not a date"
    if form < 0.4:
        return moment.strftime("%Y-%m-%d")
    if form < 0.6:
        return moment.strftime("%d/%m/%Y")
    if form < 0.8:
        return moment.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def _email(rng: random.Random, first: str, last: str, n: int) -> str | None:
    roll = rng.random()
    base = f"{first}.{last}{n}".lower().replace(" ", "")
    if roll < 0.03:
        return None
    if roll < 0.05:
        return f"{base}@@example"  # not an email at all
    if roll < 0.15:
        return f"  {first}.{last}{n}@Example.COM ".replace(" ", "", 1)  # case and spaces
    return f"{base}@example.com"


def customer_row(rng: random.Random, cid: int, now: datetime) -> dict[str, object]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    created = now - timedelta(days=rng.uniform(1, 400))
    updated = min(now - timedelta(minutes=5), created + timedelta(days=rng.uniform(0, 30)))
    country = rng.choice(COUNTRIES)
    roll = rng.random()
    if roll < 0.1:
        country = country.lower()
    elif roll < 0.12:
        country = "XX"
    elif roll < 0.14:
        country = ""
    return {
        "customer_id": cid,
        "email": _email(rng, first, last, cid),
        "first_name": first,
        "last_name": last,
        "country": country,
        "signup_date": _signup_text(rng, created),
        "marketing_opt_in": rng.random() < 0.6,
        "lifetime_value": Decimal(rng.randint(0, 500_000)) / 100,
        "created_at": naive(created),
        "updated_at": naive(updated),
    }


def order_row(rng: random.Random, oid: int, customer_ids: int, now: datetime) -> dict[str, object]:
    created = now - timedelta(days=rng.uniform(0.01, 60))
    updated = min(now - timedelta(minutes=2), created + timedelta(hours=rng.uniform(0, 72)))
    country = rng.choice(COUNTRIES)
    currency = CURRENCIES[country]
    amount = Decimal(rng.randint(500, 40_000)) / 100
    status = rng.choice(STATUSES)
    roll = rng.random()
    if roll < 0.05:
        currency = currency.lower()
    elif roll < 0.06:
        amount = -amount  # a refund booked with the wrong sign
    elif roll < 0.07:
        status = "shipped?"
    elif roll < 0.075:
        created, updated = updated + timedelta(hours=1), updated  # created after updated
    return {
        "order_id": oid,
        "customer_id": rng.randint(1, customer_ids),
        "status": status,
        "currency": currency,
        "amount": amount,
        "created_at": naive(created),
        "updated_at": naive(updated),
    }


def event_row(rng: random.Random, eid: int, customer_ids: int, when: datetime) -> dict[str, object]:
    kind = rng.choice(EVENTS)
    props: dict[str, object] = {
        "session": f"s{rng.randint(1, 5000)}",
        "device": rng.choice(["ios", "web", "android"]),
    }
    if kind == "purchase":
        props["value"] = round(rng.uniform(5, 400), 2)
    return {
        "event_id": eid,
        "customer_id": None if rng.random() < 0.3 else rng.randint(1, customer_ids),
        "event_type": kind,
        "url": rng.choice(PAGES),
        "occurred_at": naive(when),
        "properties": json.dumps(props, sort_keys=rng.random() < 0.5),
    }


def _since_last_round(rng: random.Random, since: datetime, now: datetime) -> datetime:
    """A change stamped between the newest row already there and now, as a real source would."""
    start = min(max(since, now - timedelta(minutes=30)), now - timedelta(seconds=2))
    return start + (now - start) * rng.uniform(0.05, 0.95)


def _in_cents(row: dict[str, object]) -> dict[str, object]:
    """A checkout release that sends amounts in cents: valid money, a hundred times too large."""
    amount = row["amount"]
    assert isinstance(amount, Decimal)
    return {**row, "amount": amount * 100}


class DemoSources:
    """The three sample sources, as files in the demo folder."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.urls = {
            name: f"sqlite:///{folder / (name + '.sqlite')}" for name in ("crm", "shop", "web")
        }
        self.engines = {name: sa.create_engine(url) for name, url in self.urls.items()}

    def create(self, rng: random.Random, now: datetime) -> dict[str, int]:
        """First round: a year of customers, two months of orders, two days of events."""
        crm, shop, web = self.engines["crm"], self.engines["shop"], self.engines["web"]
        customers.create(crm, checkfirst=True)
        orders.create(shop, checkfirst=True)
        events.create(web, checkfirst=True)
        n_customers, n_orders, n_events = 1500, 4000, 12000
        rows = [customer_row(rng, i, now) for i in range(1, n_customers + 1)]
        for dup in range(n_customers + 1, n_customers + 31):  # the same person signed up twice
            twin = dict(rows[rng.randrange(len(rows))])
            twin["customer_id"] = dup
            twin["email"] = str(twin["email"] or "").upper() or None
            rows.append(twin)
        with crm.begin() as conn:
            conn.execute(customers.insert(), rows)
        with shop.begin() as conn:
            conn.execute(
                orders.insert(),
                [order_row(rng, i, n_customers, now) for i in range(1, n_orders + 1)],
            )
        # Web analytics stopped sending events three hours ago: the freshness check sees it.
        start = now - timedelta(days=2, hours=3)
        with web.begin() as conn:
            conn.execute(
                events.insert(),
                [
                    event_row(
                        rng, i, n_customers, start + timedelta(seconds=i * 2 * 86400 / n_events)
                    )
                    for i in range(1, n_events + 1)
                ],
            )
        return {"customers": len(rows), "orders": n_orders, "events": n_events}

    def change(self, rng: random.Random, now: datetime, round_no: int) -> list[str]:
        """A later round: what happens in the sources between two syncs."""
        notes: list[str] = []
        crm, shop = self.engines["crm"], self.engines["shop"]
        with crm.begin() as conn:
            top = conn.execute(sa.select(sa.func.max(customers.c.customer_id))).scalar() or 0
            last = conn.execute(sa.select(sa.func.max(customers.c.updated_at))).scalar()
            since = last.replace(tzinfo=UTC) if last else now - timedelta(hours=1)
            fresh = [customer_row(rng, top + i, now) for i in range(1, 41)]
            for row in fresh:
                row["updated_at"] = naive(_since_last_round(rng, since, now))
                row["country"] = None  # the new signup form lost its country field
            conn.execute(customers.insert(), fresh)
            ids = rng.sample(range(1, top + 1), 60)
            conn.execute(
                customers.update()
                .where(customers.c.customer_id.in_(ids))
                .values(
                    marketing_opt_in=sa.not_(customers.c.marketing_opt_in),
                    updated_at=naive(_since_last_round(rng, since, now)),
                )
            )
            columns = [c["name"] for c in sa.inspect(conn).get_columns("customers")]
            if "loyalty_tier" not in columns:
                conn.execute(sa.text("ALTER TABLE customers ADD COLUMN loyalty_tier TEXT"))
                notes.append("CRM added a column: customers.loyalty_tier")
            tier_ids = rng.sample(ids, 20)
            conn.execute(
                sa.text("UPDATE customers SET loyalty_tier = :tier WHERE customer_id = :id"),
                [{"tier": rng.choice(["bronze", "silver", "gold"]), "id": i} for i in tier_ids],
            )
        notes.append(
            f"CRM: 40 new customers, all without a country (the new signup form lost the "
            f"field), 60 changed (round {round_no})"
        )
        with shop.begin() as conn:
            top = conn.execute(sa.select(sa.func.max(orders.c.order_id))).scalar() or 0
            newest = conn.execute(sa.select(sa.func.max(orders.c.updated_at))).scalar()
            newest_at = newest.replace(tzinfo=UTC) if newest else now - timedelta(hours=1)
            conn.execute(
                orders.insert(),
                [
                    _in_cents(
                        {
                            **order_row(rng, top + i, 1500, now),
                            "updated_at": naive(_since_last_round(rng, newest_at, now)),
                        }
                    )
                    for i in range(1, 201)
                ],
            )
            # A late commit: stamped 4 minutes before the newest row the last sync could see.
            late = rng.sample(range(1, top + 1), 5)
            conn.execute(
                orders.update()
                .where(orders.c.order_id.in_(late))
                .values(status="refunded", updated_at=naive(newest_at - timedelta(minutes=4)))
            )
            deleted = rng.sample([i for i in range(1, top + 1) if i not in late], 12)
            conn.execute(orders.delete().where(orders.c.order_id.in_(deleted)))
        notes.append(
            f"shop: 200 new orders, their amounts in cents (a checkout release), 5 late-arriving "
            f"refunds, 12 orders hard-deleted "
            f"(ids {', '.join(map(str, sorted(deleted)[:5]))}, …)"
        )
        return notes
