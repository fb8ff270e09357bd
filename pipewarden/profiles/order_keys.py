"""Which customer an order belongs to: the one whose key, written as text, its customer id
equals exactly.

Where the orders' customer column and the customers' key are of one kind (both integers, both
text) they are compared as they are. Where they differ (integer keys, text ids in the orders),
converting the order's id to the key's type would fail every build on one `'abc'` and credit
`'042'` and `' 42'` to customer 42; so both are compared as text, the key as the database
writes it (`42`), and an order naming no key so is counted, never credited to anyone.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa


def _kind(column: sa.ColumnElement[Any]) -> type | None:
    try:
        return column.type.python_type
    except NotImplementedError:
        return None


def same_kind(order_customer: sa.ColumnElement[Any], key: sa.ColumnElement[Any]) -> bool:
    """True when the two columns can be compared as they are."""
    kind = _kind(key)
    return kind is not None and kind is _kind(order_customer)


def as_text(column: sa.ColumnElement[Any]) -> sa.ColumnElement[Any]:
    """The column as unbounded text (PostgreSQL's CAST to VARCHAR(n) cuts a longer value
    short without a word); a text column as it is, so that its index still serves."""
    if isinstance(column.type, sa.String) and column.type.length is None:
        return column
    return sa.cast(column, sa.String())


def belongs(order_customer: sa.ColumnElement[Any], key: sa.ColumnElement[Any]) -> Any:
    """The condition that an order with `order_customer` is the customer with `key`'s."""
    if same_kind(order_customer, key):
        return order_customer == key
    return as_text(order_customer) == as_text(key)


def unknown_customer_orders(
    conn: sa.Connection,
    orders: sa.Table,
    order_customer: str,
    key: sa.ColumnElement[Any],
    changed_after: tuple[sa.ColumnElement[Any], datetime] | None = None,
) -> int:
    """How many orders name no customer; only those whose `changed_after` column is past its
    time, when given (an incremental build reads no other)."""
    customer = orders.c[order_customer]
    known = sa.select(sa.literal(1)).where(belongs(customer, key)).exists()
    query = sa.select(sa.func.count()).select_from(orders).where(~known)
    if changed_after is not None:
        column, since = changed_after
        query = query.where(column > since)
    return int(conn.scalar(query) or 0)
