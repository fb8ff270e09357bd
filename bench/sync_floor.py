"""The floor of a PostgreSQL → PostgreSQL sync of `orders`: hand-written psycopg, binary COPY out
of the source streamed into a binary COPY into a staging table, then one
`INSERT … ON CONFLICT DO UPDATE` (no Python per value at all).

Imported by bench/sync.py (timed in process), and run as a script of its own by bench/cli.py, so
that `pipewarden sync` from the shell is compared with a floor that pays for its interpreter and
imports too: `python bench/sync_floor.py SOURCE_URL TARGET_URL [SINCE]`.
"""

import sys

import psycopg

DDL = """
CREATE TABLE orders (
    order_id bigint PRIMARY KEY,
    customer_email text NOT NULL,
    amount numeric(12,2) NOT NULL,
    currency char(3) NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    attributes jsonb
)
"""
UPSERT = """
INSERT INTO orders SELECT * FROM stage
ON CONFLICT (order_id) DO UPDATE SET customer_email = excluded.customer_email,
  amount = excluded.amount, currency = excluded.currency, created_at = excluded.created_at,
  updated_at = excluded.updated_at, attributes = excluded.attributes
WHERE orders.updated_at <= excluded.updated_at
"""


def dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def floor_load(source: str, target: str, since: str | None = None) -> None:
    """The floor: raw binary COPY out, raw binary COPY in, one upsert."""
    where = "" if since is None else " WHERE updated_at >= %(since)s"
    with psycopg.connect(dsn(source)) as src, psycopg.connect(dsn(target)) as dst:
        dst.execute(DDL.replace("CREATE TABLE orders", "CREATE TABLE IF NOT EXISTS orders"))
        dst.execute("CREATE TEMP TABLE stage (LIKE orders) ON COMMIT DROP")
        with src.cursor() as out_cur, dst.cursor() as in_cur:
            query = f"COPY (SELECT * FROM orders{where}) TO STDOUT (FORMAT BINARY)"
            with (
                out_cur.copy(query, {"since": since} if since else None) as out,
                in_cur.copy("COPY stage FROM STDIN (FORMAT BINARY)") as into,
            ):
                for block in out:
                    into.write(block)
        dst.execute(UPSERT)
        dst.commit()


if __name__ == "__main__":
    floor_load(*sys.argv[1:4])
