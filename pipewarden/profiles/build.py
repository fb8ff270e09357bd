"""Building the profile table in the warehouse, in SQL: full, or only the customers touched.

An incremental build finds the customers whose rows changed since the last build (customers,
orders, the cart stream's latest state, and orders that left the window since), rebuilds
their rows, then moves the R, F and M cuts (`quantiles`) and rewrites the touched customers
and those whose score a moved cut changed. A full build aggregates every customer once,
ranks the cuts off those rows and scores them by the cuts (`full`); both give the same table.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig, ProfilesConfig
from pipewarden.dialects import dialect_of
from pipewarden.profiles.build_lock import build_lock
from pipewarden.profiles.deletions import deleted_customers
from pipewarden.profiles.full import ORDER_COUNT, build_full
from pipewarden.profiles.order_keys import as_text, belongs, same_kind, unknown_customer_orders
from pipewarden.profiles.overflow import naming_overflow
from pipewarden.profiles.quantiles import (
    Mover,
    StaleCuts,
    cuts_from_scores,
    read_cuts,
    read_inputs,
    write_cuts,
)
from pipewarden.profiles.rewrite import fill_fresh, fresh_table, rescore_moved, write_changed
from pipewarden.profiles.rules import segment_expression
from pipewarden.profiles.tables import builds_table, profile_indexes, profile_table


@dataclass
class BuildResult:
    build_id: int
    mode: str
    as_of: datetime
    changed: list[str] = field(default_factory=list)
    rows: int = 0
    status: str = "ok"
    problems: list[str] = field(default_factory=list)
    data_as_of: datetime | None = None
    #: Orders whose customer id is no customer's key as written (`order_keys`): all of them
    #: in a full build, those changed since the last build in an incremental one.
    unknown_customer_orders: int = 0


@dataclass
class _Inputs:
    customers: sa.Table
    orders: sa.Table
    latest: sa.Table | None
    profiles: sa.Table
    builds: sa.Table


def _reflect(conn: sa.Connection, name: str, schema: str | None, what: str) -> sa.Table:
    try:
        return sa.Table(name, sa.MetaData(schema=schema), autoload_with=conn)
    except sa.exc.NoSuchTableError:
        raise ValueError(f"profiles.{what}: table {name!r} is not in the warehouse") from None


#: Column types that cannot be summed into monetary.
_NOT_AMOUNTS = (sa.Date, sa.DateTime, sa.Time, sa.Interval, sa.Boolean)


def _column(table: sa.Table, name: str, what: str) -> sa.Column[Any]:
    if name not in table.c:
        known = ", ".join(table.c.keys())
        raise ValueError(f"profiles.{what}: {table.name} has no column {name!r} (has: {known})")
    return table.c[name]


def _inputs(conn: sa.Connection, config: PipewardenConfig) -> _Inputs:
    spec = _spec(config)
    schema = config.warehouse.schema_name
    customers = _reflect(conn, spec.customers.table, schema, "customers.table")
    orders = _reflect(conn, spec.orders.table, schema, "orders.table")
    for name, what in (
        (spec.customers.key, "customers.key"),
        (spec.customers.updated_at, "customers.updated_at"),
        *(((spec.customers.consent, "customers.consent"),) if spec.customers.consent else ()),
    ):
        _column(customers, name, what)
    for name, what in (
        (spec.orders.customer, "orders.customer"),
        (spec.orders.amount, "orders.amount"),
        (spec.orders.time, "orders.time"),
        (spec.orders.updated_at or spec.orders.time, "orders.updated_at"),
    ):
        _column(orders, name, what)
    amount = orders.c[spec.orders.amount]
    if isinstance(amount.type, _NOT_AMOUNTS):
        raise ValueError(
            f"profiles.orders.amount: {orders.name}.{amount.name} is {amount.type}, not a number"
        )
    latest = None
    if spec.cart is not None:
        stream = config.streams[spec.cart.stream]
        assert stream.latest_table  # checked at load
        latest = sa.Table(
            stream.latest_table,
            sa.MetaData(schema=schema),
            sa.Column("subject", sa.String(500)),
            sa.Column("event_type", sa.String(200)),
            sa.Column("event_time", sa.DateTime(timezone=True)),
            sa.Column("payload", sa.Text),
            sa.Column("updated_at", sa.DateTime(timezone=True)),
        )
        if not sa.inspect(conn).has_table(stream.latest_table, schema=schema):
            latest.create(conn)  # the receiver creates it too; empty until carts arrive
    consent = customers.c[spec.customers.consent].type if spec.customers.consent else None
    return _Inputs(
        customers, orders, latest, profile_table(spec.table, schema, consent), builds_table(schema)
    )


def _spec(config: PipewardenConfig) -> ProfilesConfig:
    if config.profiles is None:
        raise ValueError("the configuration declares no profiles (profiles: in pipewarden.yaml)")
    return config.profiles


def _native(column: sa.Column[Any]) -> Any:
    """Text as the column's own Python type (int for an integer key), else left as text."""
    try:
        kind = column.type.python_type
    except NotImplementedError:
        return str
    return kind if kind in (int, str) else str


def _scoring(spec: ProfilesConfig) -> str:
    """What the scores and segments were computed by: kept with the cuts."""
    rules = [[rule.name, rule.when] for rule in spec.segments]
    return json.dumps([spec.scores, rules, spec.default_segment])


def _read_from(spec: ProfilesConfig) -> str:
    """What the profiles are computed from (tables, columns, window): kept with the cuts."""
    parts = [spec.customers, spec.orders, spec.cart]
    inputs = [p.model_dump(mode="json") if p is not None else None for p in parts]
    return json.dumps([*inputs, spec.window.total_seconds()], sort_keys=True)


def _key(column: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
    """The key as the profile spells it: unbounded text (PostgreSQL's CAST to VARCHAR(n) cuts
    a longer value short without a word, so two long ids could become one)."""
    return sa.cast(column, sa.String())


def _touched(
    spec: ProfilesConfig, t: _Inputs, since: datetime, previous_cutoff: datetime, cutoff: datetime
) -> sa.CompoundSelect:
    """The customers whose profile may have changed since `since`, and those with orders that
    left the window (between the last build's cutoff and this one), as the customers table's
    keys (so that the orders' and customers' indexes find them)."""
    c, o = t.customers, t.orders
    key = c.c[spec.customers.key]
    order_updated = o.c[spec.orders.updated_at or spec.orders.time]
    order_time = o.c[spec.orders.time]
    order_customer = o.c[spec.orders.customer]
    changed = [order_updated > since, sa.and_(order_time > previous_cutoff, order_time <= cutoff)]
    parts: list[sa.Select[Any]] = [
        sa.select(key.label("customer_id")).where(c.c[spec.customers.updated_at] > since)
    ]
    if same_kind(order_customer, key):
        parts += [sa.select(sa.cast(order_customer, key.type)).where(when) for when in changed]
    else:  # the keys their ids name as written: an id such as 'abc' names none
        named = [sa.select(as_text(order_customer)).where(when) for when in changed]
        parts += [sa.select(key).where(as_text(key).in_(ids)) for ids in named]
    if t.latest is not None:
        carts = sa.select(t.latest.c.subject).where(t.latest.c.updated_at > since)
        parts.append(sa.select(key).where(_key(key).in_(carts)))
    return sa.union(*parts)


def _rows(
    spec: ProfilesConfig,
    t: _Inputs,
    as_of: datetime,
    cutoff: datetime,
    only: sa.Table | None,
    count_orders: bool = False,
) -> sa.Select[Any]:
    """The unscored rows: aggregates over the window, last purchase, cart, consent; with
    `count_orders`, also a row for each customer id no customer has, without a key, and each
    row's count of orders (`full.ORDER_COUNT`)."""
    c, o = t.customers, t.orders
    amount, time = o.c[spec.orders.amount], o.c[spec.orders.time]
    in_window = sa.and_(time > cutoff, time <= as_of)
    # Grouped by the orders' own column, joined by `order_keys.belongs`, text in the output.
    customer = c.c[spec.customers.key]
    order_customer = o.c[spec.orders.customer]
    orders = sa.select(
        order_customer.label("customer_id"),
        sa.func.sum(sa.case((in_window, 1), else_=0)).label("frequency"),
        sa.func.round(
            sa.cast(sa.func.sum(sa.case((in_window, amount), else_=0)), sa.Numeric), 2
        ).label("monetary"),
        sa.func.max(sa.case((time <= as_of, time))).label("last_order_at"),
        *((sa.func.count().label(ORDER_COUNT),) if count_orders else ()),
    ).group_by(order_customer)
    key = _key(customer)
    if only is not None:
        wanted: sa.ColumnElement[Any] = only.c.customer_id
        named: sa.ColumnElement[Any] = order_customer
        if not same_kind(named, wanted):
            wanted, named = as_text(wanted), as_text(named)
        orders = orders.where(named.in_(sa.select(wanted)))
    orders_sq = orders.subquery("orders_agg")
    columns: list[Any] = [
        key.label("customer_id"),
        sa.func.coalesce(orders_sq.c.frequency, 0).label("frequency"),
        sa.func.coalesce(orders_sq.c.monetary, 0).label("monetary"),
        orders_sq.c.last_order_at,
    ]
    belonging = belongs(orders_sq.c.customer_id, customer)
    query = sa.select().select_from(c).outerjoin(orders_sq, belonging, full=count_orders)
    if t.latest is not None and spec.cart is not None:
        latest = t.latest
        is_cart = sa.and_(latest.c.subject == key, latest.c.event_type.in_(spec.cart.event_types))
        query = query.outerjoin(latest, is_cart)
        columns += [
            latest.c.event_type.label("cart_event_type"),
            latest.c.payload.label("cart_payload"),
            latest.c.event_time.label("cart_updated_at"),
        ]
    if spec.customers.consent:
        columns.append(c.c[spec.customers.consent].label("consent"))
    if count_orders:
        columns.append(orders_sq.c[ORDER_COUNT])
    query = query.add_columns(*columns)
    if only is not None:
        query = query.where(c.c[spec.customers.key].in_(sa.select(only.c.customer_id)))
    return query


def _score(count_le: sa.ColumnElement[Any], n: sa.ColumnElement[Any], q: int) -> Any:
    """ceil(q · cume_dist) in integers: equal values get equal scores, on every engine."""
    return (q * count_le + n - 1) // n


def _rescore(conn: sa.Connection, spec: ProfilesConfig, p: sa.Table) -> list[str]:
    """Scores from the quantiles of every scored customer (those who ever bought); writes only
    the rows whose scores or segment changed and returns their keys."""
    q, n = spec.scores, sa.func.count().over()
    scored = (
        sa.select(
            p.c.customer_id,
            _score(sa.func.count().over(order_by=p.c.last_order_at), n, q).label("r"),
            _score(sa.func.count().over(order_by=p.c.frequency), n, q).label("f"),
            _score(sa.func.count().over(order_by=p.c.monetary), n, q).label("m"),
            p.c.frequency,
            p.c.monetary,
        )
        .where(p.c.last_order_at.is_not(None))
        .subquery("scored")
    )
    segment = segment_expression(spec.segments, spec.default_segment, dict(scored.c.items()))
    changed = sa.or_(
        p.c.r.is_distinct_from(scored.c.r),
        p.c.f.is_distinct_from(scored.c.f),
        p.c.m.is_distinct_from(scored.c.m),
        p.c.segment.is_distinct_from(segment),
    )
    keys: list[str] = list(
        conn.execute(
            sa.update(p)
            .where(p.c.customer_id == scored.c.customer_id, changed)
            .values(r=scored.c.r, f=scored.c.f, m=scored.c.m, segment=segment)
            .returning(p.c.customer_id)
        )
        .scalars()
        .all()
    )
    unscored: list[str] = list(
        conn.execute(
            sa.update(p)
            .where(
                p.c.last_order_at.is_(None),
                sa.or_(p.c.segment.is_distinct_from(spec.default_segment), p.c.r.is_not(None)),
            )
            .values(r=None, f=None, m=None, segment=spec.default_segment)
            .returning(p.c.customer_id)
        )
        .scalars()
        .all()
    )
    return [*keys, *unscored]


def _check(
    conn: sa.Connection, spec: ProfilesConfig, t: _Inputs, rows: int, keys: Any = None
) -> list[str]:
    """The profile table's own checks: one row per customer, scores in range, known segments;
    the scores and segments of the customers `keys` only, when given. One pass over the rows
    checked."""
    p, problems = t.profiles, []
    customers = conn.scalar(
        sa.select(sa.func.count(sa.distinct(t.customers.c[spec.customers.key])))
    )
    if customers != rows:
        problems.append(f"{rows} profiles for {customers} customers")
    names = [rule.name for rule in spec.segments] + [spec.default_segment]
    bad = {
        **{score: sa.not_(p.c[score].between(1, spec.scores)) for score in ("r", "f", "m")},
        "segment": sa.or_(p.c.segment.is_(None), p.c.segment.not_in(names)),
    }
    counts = sa.select(
        *(sa.func.coalesce(sa.func.sum(sa.case((when, 1), else_=0)), 0) for when in bad.values())
    )
    if keys is not None:
        counts = counts.where(p.c.customer_id.in_(keys))
    found = dict(zip(bad, conn.execute(counts.select_from(p)).one(), strict=True))
    for score in ("r", "f", "m"):
        if found[score]:
            problems.append(f"{found[score]} profiles with {score} outside 1..{spec.scores}")
    if found["segment"]:
        problems.append(f"{found['segment']} profiles without a declared segment")
    return problems


def _count(conn: sa.Connection, table: sa.Table) -> int:
    return int(conn.scalar(sa.select(sa.func.count()).select_from(table)) or 0)


def _data_as_of(conn: sa.Connection, spec: ProfilesConfig, t: _Inputs) -> datetime | None:
    """The oldest of the inputs' newest changes (tables and the cart stream's newest event):
    the profile is as fresh as that input."""
    newest = [
        conn.scalar(sa.select(sa.func.max(t.customers.c[spec.customers.updated_at]))),
        conn.scalar(sa.select(sa.func.max(t.orders.c[spec.orders.updated_at or spec.orders.time]))),
    ]
    if t.latest is not None:
        newest.append(conn.scalar(sa.select(sa.func.max(t.latest.c.event_time))))
    known = [_utc(value) for value in newest if value is not None]
    return min(known) if known else None


def _utc(value: Any) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def last_build(conn: sa.Connection, schema: str | None, table: str) -> sa.Row[Any] | None:
    """The newest build of `table`, or None."""
    b = builds_table(schema)
    if not sa.inspect(conn).has_table(b.name, schema=schema):
        return None
    return conn.execute(
        sa.select(b).where(b.c.profile_table == table).order_by(b.c.build_id.desc()).limit(1)
    ).first()


def _add_consent(conn: sa.Connection, profiles: sa.Table) -> bool:
    """Add the consent column to a profile table built before `customers.consent` was set;
    True when added (every profile then lacks it: the build must be full)."""
    if "consent" not in profiles.c:
        return False
    built = {c["name"] for c in sa.inspect(conn).get_columns(profiles.name, profiles.schema)}
    if "consent" in built:
        return False
    quote = conn.dialect.identifier_preparer
    kind = profiles.c.consent.type.compile(dialect=conn.dialect)
    table, column = quote.format_table(profiles), quote.quote("consent")
    conn.execute(sa.text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    return True


def build_profiles(
    engine: sa.Engine, config: PipewardenConfig, full: bool = False, as_of: datetime | None = None
) -> BuildResult:
    """Build the profiles in one transaction under the build lock; a build without an earlier
    one is full."""
    with build_lock(engine, config, _spec(config).table):
        return build_locked(engine, config, full, as_of)


def build_locked(
    engine: sa.Engine, config: PipewardenConfig, full: bool = False, as_of: datetime | None = None
) -> BuildResult:
    """`build_profiles` for a caller that holds `build_lock` (and keeps it while it checks
    and publishes what was built)."""
    spec = _spec(config)
    as_of = as_of or datetime.now(UTC)
    cutoff = as_of - spec.window
    with naming_overflow(spec), engine.begin() as conn:
        t = _inputs(conn, config)
        t.builds.create(conn, checkfirst=True)
        t.profiles.create(conn, checkfirst=True)
        for index in profile_indexes(t.profiles):
            index.create(conn, checkfirst=True)
        schema = config.warehouse.schema_name
        previous = last_build(conn, schema, spec.table)
        full = _add_consent(conn, t.profiles) or full or previous is None
        # Read from other columns or tables than the last build: no profile is right any more.
        if previous is not None and read_inputs(
            conn, schema, spec.table, previous.build_id
        ) not in (None, _read_from(spec)):
            full = True
        if full:
            both_ways = dialect_of(conn).full_join
            rows = _rows(spec, t, as_of, cutoff, None, count_orders=both_ways)
            cuts, unknown = build_full(conn, spec, t.profiles, rows)
            if not both_ways:  # no FULL JOIN: the orders naming no customer counted apart
                unknown = unknown_customer_orders(
                    conn, t.orders, spec.orders.customer, t.customers.c[spec.customers.key]
                )
            rebuilt: list[str] = []
            row_count = _count(conn, t.profiles)
            problems = _check(conn, spec, t, row_count)
            changed = list(conn.execute(sa.select(t.profiles.c.customer_id)).scalars())
        else:
            assert previous is not None
            # A few customers' rows, looked up by index in tables of millions.
            dialect_of(conn).favour_index_lookups(conn)
            since = _utc(previous.as_of) - spec.lookback
            previous_cutoff = _utc(previous.as_of) - spec.window
            touched = sa.Table(
                f"pw_touched_{spec.table}"[:60],
                sa.MetaData(),
                sa.Column("customer_id", t.customers.c[spec.customers.key].type, primary_key=True),
                # the same as the profile table spells it, for its primary key
                sa.Column("profile_key", sa.String(), nullable=False, unique=True),
                prefixes=["TEMPORARY"],
            )
            touched.create(conn)
            found = _touched(spec, t, since, previous_cutoff, cutoff).subquery("found")
            conn.execute(
                sa.insert(touched).from_select(
                    ["customer_id", "profile_key"],
                    sa.select(found.c.customer_id, _key(found.c.customer_id)),
                )
            )
            keys = sa.select(touched.c.profile_key)
            rebuilt = list(conn.execute(keys).scalars())
            deleted = sorted(deleted_customers(conn, config, since) - set(rebuilt))
            if deleted:  # their rows are gone: only the profile's delete below finds them
                native = _native(t.customers.c[spec.customers.key])
                conn.execute(
                    sa.insert(touched),
                    [{"customer_id": native(k), "profile_key": k} for k in deleted],
                )
                rebuilt += deleted
            # Its size known, the planner looks the touched customers up by index when that
            # costs less than reading the whole profile table.
            conn.execute(
                sa.text("ANALYZE " + conn.dialect.identifier_preparer.format_table(touched))
            )
            # None when the previous build kept no cuts, or scored by other scores or rules:
            # then everyone is scored again, as a full build would.
            old = read_cuts(conn, schema, spec.table, previous.build_id, _scoring(spec))
            mover = Mover(conn, t.profiles, keys)
            if old is not None:
                mover.before()
            fresh = fresh_table(t.profiles)
            fresh.create(conn)
            fill_fresh(conn, spec, fresh, _rows(spec, t, as_of, cutoff, touched), old)
            written = write_changed(conn, t.profiles, fresh, keys)
            try:
                if old is None:
                    raise StaleCuts("no cuts of the previous build's scoring")
                cuts = mover.after(old, spec.scores, fresh)
                written += rescore_moved(conn, spec, t.profiles, old, cuts)
            except StaleCuts:
                written += _rescore(conn, spec, t.profiles)
                cuts = cuts_from_scores(conn, t.profiles, spec.scores)
            changed = sorted(set(rebuilt) | set(written))
            # After a good build, only the rewritten rows' scores and segments are checked:
            # the touched ones (the rows a cut moved get theirs from the same expressions).
            row_count = _count(conn, t.profiles)
            problems = _check(conn, spec, t, row_count, keys if previous.status == "ok" else None)
            fresh.drop(conn)
            touched.drop(conn)
            unknown = unknown_customer_orders(
                conn,
                t.orders,
                spec.orders.customer,
                t.customers.c[spec.customers.key],
                (t.orders.c[spec.orders.updated_at or spec.orders.time], since),
            )
        data_as_of = _data_as_of(conn, spec, t)
        status = "failed" if problems else "ok"
        build_id: int = conn.execute(
            sa.insert(t.builds)
            .values(
                profile_table=spec.table,
                mode="full" if full else "incremental",
                as_of=as_of,
                finished_at=datetime.now(UTC),
                data_as_of=data_as_of,
                customers_changed=len(changed),
                profile_rows=row_count,
                status=status,
                problems="; ".join(problems) or None,
            )
            .returning(t.builds.c.build_id)
        ).scalar_one()
        write_cuts(conn, schema, spec.table, build_id, cuts, _scoring(spec), _read_from(spec))
    return BuildResult(
        build_id,
        "full" if full else "incremental",
        as_of,
        changed,
        row_count,
        status,
        problems,
        data_as_of,
        unknown,
    )
