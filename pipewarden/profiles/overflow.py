"""A sum too large for the profile table's columns, said with the column and its limit.

The database's own words (`numeric field overflow`, `integer out of range`) name no column,
and the statement it quotes is the whole build's; a customer's orders adding up past
`monetary`'s precision (an amount of 10^16 or more, or a unit slip) is what they mean here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from pipewarden.config import ProfilesConfig
from pipewarden.profiles.tables import profile_table

#: SQLSTATE numeric_value_out_of_range (standard SQL: PostgreSQL and others say it so).
_OUT_OF_RANGE = "22003"


@contextmanager
def naming_overflow(spec: ProfilesConfig) -> Iterator[None]:
    """Turn an out-of-range value in the build into a ValueError naming the column."""
    try:
        yield
    except sa.exc.DataError as error:
        if getattr(error.orig, "sqlstate", None) != _OUT_OF_RANGE:
            raise
        said = str(error.orig).splitlines()[0]
        if "integer" in said:
            column, source = "frequency", f"the count of {spec.orders.table} rows"
            limit = "integer"
        else:
            column, source = "monetary", f"the sum of {spec.orders.table}.{spec.orders.amount}"
            kind = profile_table(spec.table, None, None).c.monetary.type
            precision, scale = getattr(kind, "precision", 0), getattr(kind, "scale", 0)
            limit = f"numeric({precision},{scale}): below 10^{precision - scale}"
        raise ValueError(
            f"profiles: a customer's {column} ({source} over the window) does not fit "
            f"{spec.table}.{column}, {limit} (the database said: {said}); look for an order "
            f"that large in {spec.orders.table}"
        ) from None
