"""dlt as the peer in bench/sync.py: a full load of `orders` from one PostgreSQL into another.

Run from its own venv (bash bench/peers/install.sh), never pipewarden's:

    bench/.peers/dlt/bin/python bench/peers/dlt_load.py SOURCE_DSN TARGET_DSN

with DSNs like postgresql://postgres@127.0.0.1:5432/dbname. The last stdout line is JSON:
{"seconds": <merge load>, "rows": <rows in the target>, "append_seconds": <append load>, ...}.

dlt in its fastest configuration: `sql_table(backend="connectorx")` reads the table as one Arrow
table (connectorx's binary protocol), the pipeline writes it as parquet, and the postgres
destination loads parquet with the ADBC PostgreSQL driver (binary COPY of Arrow batches). Without
`adbc-driver-postgresql` installed dlt would silently fall back to insert_values, so the script
checks that the load really used parquet and fails otherwise.

Timed: `pipeline.run(...)` only (extract + normalize + load), with write_disposition "merge" and
primary key order_id — the semantics of pipewarden's upsert. dlt's default merge strategy
(delete-insert) loads into a staging dataset (<dataset>_staging), deletes the matching keys in
the final table and inserts from staging (deduplicated on the key); that is "seconds". The same
load with write_disposition "append" (COPY straight into the final table, no staging) is timed
after it and printed as "append_seconds". Not timed: an untimed 1,000-row warm-up load into its
own dataset first (the first load in a fresh process pays one-off costs, ~1-2 s, that
pipewarden, timed in a warm process, does not), dropping the dataset schemas before each load,
counting the rows. Each load uses a fresh pipelines dir (a temp dir) and starts from dropped
datasets, so every load is a full load with no state from a previous one; the script drops its
schemas (dlt_bench, dlt_bench_staging) again at the end.

Types (dlt 1.31, checked on the target; 50,000 rows identical to the source by an md5 over all
columns with attributes compared as jsonb):
- numeric(12,2) stays exact: dlt reflects precision and scale, connectorx reads numeric as an
  Arrow decimal128(38,10) (never float), parquet keeps the decimal, and the target column is
  numeric(12,2). reflection_level="full_with_precision" also keeps char(3) as varchar(3) (with
  the default level it becomes unbounded varchar).
- jsonb: connectorx reads it as text (re-serialised, keys sorted); dlt keeps the "json" hint from
  reflection, but with parquet loading it creates the target column as `json`, not `jsonb` (ADBC
  cannot COPY into jsonb). SQL NULL stays NULL, a JSON null stays 'null'. pipewarden's target
  column is jsonb.
- text and char(3) become varchar, timestamptz stays timestamptz. dlt adds no
  _dlt_load_id/_dlt_id columns to Arrow data by default.
- order_id is only a dlt hint: the target table gets no PRIMARY KEY constraint or index.
"""

import json
import os
import sys
import tempfile
import time
from urllib.parse import urlsplit, urlunsplit

# No telemetry (only 127.0.0.1 is reachable here) and quiet logs on stderr.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")
os.environ.setdefault("RUNTIME__LOG_LEVEL", "WARNING")

import dlt  # noqa: E402
import psycopg2  # noqa: E402
from dlt.sources.sql_database import sql_table  # noqa: E402

DATASET = "dlt_bench"
WARMUP = "dlt_bench_warmup"
TABLE = "orders"


def sqlalchemy_url(dsn: str) -> str:
    """postgresql://… → postgresql+psycopg2://… (dlt reflects the table through SQLAlchemy)."""
    parts = urlsplit(dsn)
    scheme = "postgresql+psycopg2" if parts.scheme in ("postgresql", "postgres") else parts.scheme
    return urlunsplit((scheme, *parts[1:]))


def plain_url(dsn: str) -> str:
    """The libpq form connectorx and psycopg2 take."""
    parts = urlsplit(dsn)
    return urlunsplit(("postgresql", *parts[1:]))


def destination_credentials(dsn: str) -> str:
    """dlt's PostgresCredentials require a password; the bench's DSNs have none (trust auth), so a
    placeholder is added that the server never asks for."""
    parts = urlsplit(plain_url(dsn))
    if parts.password is not None or "@" not in parts.netloc:
        return plain_url(dsn)
    user, host = parts.netloc.rsplit("@", 1)
    return urlunsplit((parts.scheme, f"{user}:unused@{host}", *parts[2:]))


def drop_datasets(target: str, dataset: str = DATASET) -> None:
    with psycopg2.connect(plain_url(target)) as conn, conn.cursor() as cur:
        for schema in (dataset, f"{dataset}_staging"):
            cur.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    conn.close()


def count_rows(target: str) -> int:
    with psycopg2.connect(plain_url(target)) as conn, conn.cursor() as cur:
        cur.execute(f'SELECT count(*) FROM "{DATASET}"."{TABLE}"')
        rows = int(cur.fetchone()[0])
    conn.close()
    return rows


def load(
    source: str,
    target: str,
    write_disposition: str,
    dataset: str = DATASET,
    limit: int | None = None,
) -> float:
    """One full load in a fresh pipelines dir; returns the seconds `pipeline.run` took."""
    drop_datasets(target, dataset)
    with tempfile.TemporaryDirectory(prefix="dlt-bench-") as pipelines_dir:
        resource = sql_table(
            credentials=sqlalchemy_url(source),
            table=TABLE,
            backend="connectorx",
            # connectorx takes a libpq URL, not SQLAlchemy's driver form.
            backend_kwargs={"conn": plain_url(source)},
            reflection_level="full_with_precision",
            query_adapter_callback=None
            if limit is None
            else (lambda query, table: query.order_by(table.c.order_id).limit(limit)),
        )
        resource.apply_hints(primary_key="order_id", write_disposition=write_disposition)
        pipeline = dlt.pipeline(
            pipeline_name="bench_orders",
            destination=dlt.destinations.postgres(credentials=destination_credentials(target)),
            dataset_name=dataset,
            pipelines_dir=pipelines_dir,
            progress="log" if os.environ.get("DLT_BENCH_VERBOSE") else None,
        )
        start = time.perf_counter()
        info = pipeline.run(resource, loader_file_format="parquet")
        seconds = time.perf_counter() - start
        info.raise_on_failed_jobs()
        formats = {
            job.job_file_info.file_format
            for package in info.load_packages
            for job in package.jobs["completed_jobs"]
            if job.job_file_info.table_name == TABLE
        } - {"sql"}  # merge adds sql follow-up jobs (staging → final)
        if formats != {"parquet"}:
            raise SystemExit(
                f"dlt loaded {TABLE} as {sorted(formats)}, not parquet "
                "(is adbc-driver-postgresql installed?)"
            )
    return seconds


def main() -> None:
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    source, target = sys.argv[1], sys.argv[2]
    # Untimed warm-up (1,000 rows, its own dataset): the first load in a process pays one-off
    # costs (lazy imports, driver loading) that pipewarden, timed in a warm process, does not.
    load(source, target, "merge", dataset=WARMUP, limit=1_000)
    drop_datasets(target, WARMUP)
    seconds = load(source, target, "merge")
    rows = count_rows(target)
    append_seconds = load(source, target, "append")
    append_rows = count_rows(target)
    if rows != append_rows:
        raise SystemExit(f"merge loaded {rows} rows, append {append_rows}")
    drop_datasets(target)
    print(
        json.dumps(
            {
                "seconds": round(seconds, 4),
                "rows": rows,
                "append_seconds": round(append_seconds, 4),
                "dlt": dlt.__version__,
                "merge_strategy": "delete-insert",
                "loader_file_format": "parquet",
                "backend": "connectorx",
            }
        )
    )


if __name__ == "__main__":
    main()
