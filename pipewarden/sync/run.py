"""One table's delta sync, start to finish: the plain function the flow and the CLI call."""

import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import numpy as np
import polars as pl
import sqlalchemy as sa

from pipewarden.alerts.announce import raise_alerts
from pipewarden.alerts.findings import from_quarantine, from_sync_run
from pipewarden.checks.validation.gate import BatchGate, GatedBatch
from pipewarden.checks.validation.schema_gate import gate_for
from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.config.timeouts import Timeouts
from pipewarden.config.urls import redact_secrets
from pipewarden.db.engines import cached_engine, connect
from pipewarden.db.timeouts import naming_timeouts
from pipewarden.dialects import Dialect, dialect_for
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.measurements.profiles import ProfileAccumulator
from pipewarden.measurements.sync_metrics import write_sync_metrics
from pipewarden.records import quarantine
from pipewarden.records.column_kinds import read_kinds, write_kinds
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.schema_changes import mark_backfilled, record_added_columns
from pipewarden.records.sync_ledgers import StoredLedger, claim_ledger, replace_ledger
from pipewarden.records.sync_runs import (
    SyncRun,
    abandon_runs,
    finish_run,
    record_outcome,
    running_runs,
    start_run,
)
from pipewarden.records.watermarks import Watermark, read_watermark
from pipewarden.sync.cursor import Lookback, Tick, effective_lookback, lookback_problem, read_from
from pipewarden.sync.extract import (
    Position,
    last_position,
    newest_cursor,
    read_batches,
    read_null_cursor_rows,
)
from pipewarden.sync.latency import Latencies
from pipewarden.sync.load import BatchLoader, BatchResult, backfill
from pipewarden.sync.prefetch import prefetch
from pipewarden.sync.reread import RereadLedger
from pipewarden.sync.schema import (
    SchemaDriftError,
    TableShape,
    add_columns,
    compare,
    create_target,
    reflect_cached,
    refuse_breaking_drift,
    refuse_uncarried_types,
)
from pipewarden.sync.screen import screen

log = logging.getLogger(__name__)


class SyncError(RuntimeError):
    """A sync that cannot proceed; the message says which table and why."""


@dataclass
class SyncOptions:
    full_refresh: bool = False
    backfill_columns: list[str] = field(default_factory=list)
    #: Called after every committed batch (progress bars; tests that stop a run mid-way).
    on_batch: Callable[[SyncRun], None] | None = None
    #: The table's checks (`schema:`, `normalize:`, `columns:`) are applied by default; tests
    #: pass a gate of their own here.
    gate_factory: Callable[[TableConfig, Mapping[str, ColumnKind]], BatchGate] = gate_for


def sync_table(config: PipewardenConfig, name: str, options: SyncOptions | None = None) -> SyncRun:
    """Copy what changed in one source table into the warehouse; returns the run's record.

    Runs of one table take turns (the table's run lock); a run that takes it marks the
    table's runs still recorded as running, whose holders must have died, abandoned.
    """
    options = options or SyncOptions()
    table_config = config.table(name)
    timeouts = config.timeouts.engine()
    warehouse = cached_engine(config.warehouse.url, timeouts)
    source = cached_engine(config.sources[table_config.source].url, timeouts)
    run = SyncRun(
        run_id=str(uuid4()),
        table_name=name,
        started_at=datetime.now(UTC),
        full_refresh=options.full_refresh,
    )

    def run_alerts(conn: sa.Connection) -> None:
        held = quarantine.held_count(conn, name)
        # The run's failure groups only name an open quarantine: no read when nothing is held.
        groups = quarantine.failures_of_run(conn, run.run_id) if held else []
        held_rows = from_quarantine(name, held, groups, run.run_id)
        raise_alerts(conn, config, [*from_sync_run(run), held_rows])

    where = f"table {name}: warehouse table {table_config.target_table!r}"
    # An unreachable warehouse fails before anything is recorded.
    with connect(warehouse) as wh, naming_timeouts(where, wh.dialect.name, timeouts):
        ensure_tables(warehouse)
        dialect = dialect_for(wh.dialect.name)
        wait = config.timeouts.run_lock.total_seconds()
        lock_name = f"{config.warehouse.schema_name or ''}.{table_config.target_table}"
        waiting = (
            f"table {name}: another sync of warehouse table {table_config.target_table!r} is "
            f"running; waiting up to {wait:g} s for it to finish (timeouts.run_lock)"
        )
        with dialect.run_lock(wh, lock_name, wait, lambda: log.warning(waiting)) as held:
            if not held:
                message = _lock_refused(wh, table_config, wait)
                finish_run(wh, run, "failed", message, also=run_alerts)
                raise RunLocked(message)
            with wh.begin():
                abandon_runs(wh, name, run.run_id)
            _run(wh, warehouse, source, config, table_config, run, options, run_alerts)
    return run


class RunLocked(SyncError):
    """Another sync of the table kept its run lock for longer than `timeouts.run_lock`."""


def _lock_refused(wh: sa.Connection, table_config: TableConfig, wait: float) -> str:
    with wh.begin():
        running = running_runs(wh, table_config.name)
    holder = f"run {running[-1][0]} started at {running[-1][1]}" if running else "another process"
    return (
        f"table {table_config.name}: another sync of warehouse table "
        f"{table_config.target_table!r} is running ({holder}); gave up after waiting "
        f"{wait:g} s for it to finish (timeouts.run_lock). Nothing was loaded by this run."
    )


def _run(
    wh: sa.Connection,
    warehouse: sa.Engine,
    source: sa.Engine,
    config: PipewardenConfig,
    table_config: TableConfig,
    run: SyncRun,
    options: SyncOptions,
    run_alerts: Callable[[sa.Connection], None],
) -> None:
    """The run under its lock: recorded as running, synced, its outcome recorded."""
    start_run(wh, run)
    profiles = ProfileAccumulator(
        table_config.name, cursor=table_config.cursor, key=table_config.primary_key
    )
    where = f"table {table_config.name}: source table {table_config.source_table!r}"
    try:
        with (
            connect(source) as src,
            naming_timeouts(where, src.dialect.name, config.timeouts.engine()),
        ):
            _sync(src, wh, config, table_config, run, options, profiles)
    except Exception as error:
        message = redact_secrets(f"{type(error).__name__}: {error}")
        if wh.in_transaction():
            wh.rollback()
        try:
            finish_run(wh, run, "failed", message, also=run_alerts)
        except sa.exc.DBAPIError:  # the connection itself broke: record on a fresh one
            finish_run(warehouse, run, "failed", message, also=run_alerts)
        raise
    try:
        with wh.begin():  # the outcome, the run's metrics and its alerts, one commit
            record_outcome(wh, run, "success")
            write_sync_metrics(wh, run, table_config, profiles)
            run_alerts(wh)
    except Exception:
        # Every batch is committed: the run succeeded, even if its metrics were not written.
        if wh.in_transaction():
            wh.rollback()
        try:
            finish_run(wh, run, "success", also=run_alerts)
        except sa.exc.DBAPIError:
            finish_run(warehouse, run, "success", also=run_alerts)
        raise


def _sync(
    src: sa.Connection,
    wh: sa.Connection,
    config: PipewardenConfig,
    table_config: TableConfig,
    run: SyncRun,
    options: SyncOptions,
    profiles: ProfileAccumulator,
) -> None:
    """One table's delta, in the order it happens:

    1. Read the source table's shape; refuse what cannot be carried (a missing key or cursor
       column, a type the warehouse cannot hold exactly, a lookback the cursor cannot take).
    2. Bring the warehouse table in line: create it, or add the source's new columns (a dropped
       or retyped column fails here, before anything loads); backfill columns if asked.
    3. Decide where the delta starts (the watermark minus the lookback, floored to the cursor's
       tick) and how far the watermark may move (now, and the oldest open source transaction).
    4. Read keyset batches from there; each is screened and checked a batch ahead, then loaded
       with its held rows and its watermark in one transaction.
    5. On a first load, take the rows whose cursor is NULL by key: no cursor ever reads them.
    6. Sum up how long the new rows took to arrive (latency p50, p95, max).
    """
    sides = _read_source(src, wh, config, table_config)
    with sides.on_warehouse():
        target = _prepare_target(wh, sides.target_dialect, config, table_config, sides.source, run)
    if options.backfill_columns:
        _backfill(sides, target, options, run)
    start = _where_to_start(sides, target, run, options, profiles)
    latencies = _load(sides, target, start, run, options, profiles)
    if run.new_watermark is None:
        run.new_watermark = run.old_watermark
    _sum_up_latency(run, latencies)


@dataclass
class _Sides:
    """Both ends of one run: connections, their dialects and the source table's shape."""

    src: sa.Connection
    wh: sa.Connection
    source_dialect: Dialect
    target_dialect: Dialect
    source: TableShape
    table: TableConfig
    timeouts: Timeouts

    def on_warehouse(self) -> AbstractContextManager[None]:
        """A timeout on the warehouse names the table (`DatabaseTimeout`)."""
        where = f"table {self.table.name}: warehouse table {self.table.target_table!r}"
        return naming_timeouts(where, self.wh.dialect.name, self.timeouts)


@dataclass
class _Start:
    """Where the delta starts and how far its watermark may move."""

    watermark: Watermark | None
    #: A first load into an empty table skips staging and merge.
    empty_target: bool
    #: The watermark never moves past this (None: no limit, the cursor is not a time).
    cap: datetime | None
    #: The cursor value the first batch reads from (None: from the start).
    at: Any
    lookback: Lookback
    tick: Tick
    #: The table's re-read ledger as this run found it (`sync.reread`).
    ledger: StoredLedger
    #: Whether this run may skip re-read rows by it.
    use_ledger: bool


def _read_source(
    src: sa.Connection, wh: sa.Connection, config: PipewardenConfig, table_config: TableConfig
) -> _Sides:
    """Step 1: the source table's shape, once everything it needs is known to be there."""
    source_dialect = dialect_for(src.dialect.name)
    target_dialect = dialect_for(wh.dialect.name)
    if not target_dialect.warehouse:
        raise SyncError(f"{wh.dialect.name} is not supported as a warehouse")
    source = reflect_cached(src, table_config.source_table, table_config.source_schema)
    if source is None:
        raise SyncError(
            f"table {table_config.name}: source table {table_config.source_table!r} not found "
            f"in source {table_config.source!r}"
        )
    _require_columns(table_config, source)
    refuse_uncarried_types(source_dialect, source, table_config.name)
    problem = lookback_problem(table_config, source.kinds[table_config.cursor])
    if problem:
        raise SyncError(problem)
    src.rollback()  # reflection opened a transaction; batches read with fresh snapshots
    timeouts = config.timeouts.engine()
    return _Sides(src, wh, source_dialect, target_dialect, source, table_config, timeouts)


def _where_to_start(
    sides: _Sides,
    target: TableShape,
    run: SyncRun,
    options: SyncOptions,
    profiles: ProfileAccumulator,
) -> _Start:
    """Step 3: the watermark, where this run reads from and how far its watermark may move."""
    src, wh, table = sides.src, sides.wh, sides.table
    cursor = table.cursor
    cursor_kind = sides.source.kinds[cursor]
    with sides.on_warehouse():
        with wh.begin():
            watermark = None if options.full_refresh else read_watermark(wh, table.name)
            ledger = claim_ledger(wh, table.name, run.run_id)
        empty_target = watermark is None and _is_empty(wh, target.table)
    run.old_watermark = watermark.cursor if watermark else None
    cap = None
    if cursor_kind.kind == "timestamp":
        # Rows stamped in the future (a bad clock, a typo) must not carry the watermark past
        # now, and rows of a transaction still open may yet appear behind it.
        open_since = sides.source_dialect.oldest_open_transaction_start(src)
        cap = min(c for c in (run.started_at, open_since) if c is not None)
    # Rows per cursor hour count what the watermark moves over: each row once.
    profiles.count_between(None if watermark is None else (watermark.cursor, watermark.key), cap)
    run.newest_source_cursor = newest_cursor(
        src, sides.source.table, cursor, sides.source_dialect, cursor_kind
    )
    src.rollback()
    tick = sides.source_dialect.cursor_tick(sides.source.table.c[cursor].type, cursor_kind)
    lookback = effective_lookback(table.lookback, cursor_kind)
    start_at = read_from(watermark.cursor if watermark else None, lookback, tick)
    # The ledger tells what the warehouse holds only if its run last moved the watermark; a
    # backfill has just changed rows behind it.
    usable = (
        watermark is not None and ledger.run_id == watermark.run_id and not options.backfill_columns
    )
    return _Start(watermark, empty_target, cap, start_at, lookback, tick, ledger, usable)


def _load(
    sides: _Sides,
    target: TableShape,
    start: _Start,
    run: SyncRun,
    options: SyncOptions,
    profiles: ProfileAccumulator,
) -> Latencies:
    """Steps 4 and 5: every batch screened, checked and loaded; returns the new rows' latencies.

    The checks are columnar work: they run in the reading thread, a batch ahead (`prefetch`).
    Profiling is columnar work that releases the GIL too: a worker overlaps it with the next
    load.
    """
    src, wh, table, source = sides.src, sides.wh, sides.table, sides.source
    key, cursor = table.primary_key, table.cursor
    gate = options.gate_factory(table, target.kinds)

    def check(batch: pl.DataFrame) -> tuple[GatedBatch, int]:
        """The screen, then the gate: rows that cannot load held with their reasons."""
        screened = screen(batch, key, cursor, sides.target_dialect, target.kinds)
        return gate.check(screened.batch, screened.failures), screened.skipped

    latencies = Latencies()
    watermark = start.watermark
    ledger = RereadLedger(
        key, cursor, start.lookback, start.tick, start.ledger if start.use_ledger else None
    )
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pipewarden-profile") as profiler,
        BatchLoader(
            wh,
            sides.target_dialect,
            target,
            source.columns,
            key,
            cursor,
            start.empty_target,
            ledger,
        ) as loader,
    ):
        profiling: list[Future[None]] = []
        batches = read_batches(
            src,
            sides.source_dialect,
            source.table,
            source.kinds,
            key,
            cursor,
            start.at,
            table.batch_size,
        )
        for batch, gated, skipped in prefetch((batch, *check(batch)) for batch in batches):
            position = _next_watermark(batch, key, cursor, watermark, start.cap)
            with sides.on_warehouse():
                result = loader.load(gated, gate, table.name, run.run_id, position)
            _count(run, batch, result, skipped)
            if position is not None:
                run.new_watermark = position.cursor
                watermark = Watermark(
                    table.name, position.cursor, position.key, run.run_id, datetime.now(UTC)
                )
            if source.kinds[cursor].kind == "timestamp" and gated.valid.height:
                latencies.add(_latency_seconds(gated.valid[cursor], run.old_watermark))
            profiling.append(profiler.submit(profiles.add, gated.valid))
            if options.on_batch:
                options.on_batch(run)
        if run.old_watermark is None:
            for batch in read_null_cursor_rows(
                src,
                sides.source_dialect,
                source.table,
                source.kinds,
                key,
                cursor,
                table.batch_size,
            ):
                gated, skipped = check(batch)
                with sides.on_warehouse():
                    result = loader.load(gated, gate, table.name, run.run_id, None)
                _count(run, batch, result, skipped)
        for done in profiling:
            done.result()
    if watermark is not None and watermark.run_id == run.run_id:
        _keep_ledger(sides, ledger, start.ledger, run)
    return latencies


def _keep_ledger(sides: _Sides, ledger: RereadLedger, claimed: StoredLedger, run: SyncRun) -> None:
    """Leave the next run this run's ledger, unless a repair or a replay forgot the one this
    run began with (`records.sync_ledgers`)."""
    stored = ledger.stored(run.run_id)
    if stored is None:
        return
    with sides.on_warehouse(), sides.wh.begin():
        replace_ledger(sides.wh, sides.table.name, claimed, stored)


def _sum_up_latency(run: SyncRun, latencies: Latencies) -> None:
    """Step 6: seconds from each new row's cursor time to its load, over the whole run."""
    if latencies.values.size:
        run.latency_p50_seconds = latencies.percentile(50)
        run.latency_p95_seconds = latencies.percentile(95)
        run.latency_max_seconds = latencies.maximum


def _is_empty(wh: sa.Connection, table: sa.Table) -> bool:
    with wh.begin():
        return wh.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is None


def _count(run: SyncRun, batch: pl.DataFrame, result: BatchResult, skipped: int = 0) -> None:
    run.batches += 1
    run.rows_read += batch.height
    run.rows_loaded += result.rows_loaded
    run.rows_unchanged += result.rows_unchanged + skipped
    run.rows_quarantined += result.rows_quarantined


def _require_columns(table_config: TableConfig, source: TableShape) -> None:
    wanted = [*table_config.primary_key, table_config.cursor]
    missing = [c for c in wanted if c not in source.kinds]
    if missing:
        raise SyncError(
            f"table {table_config.name}: column(s) {', '.join(missing)} not in source table "
            f"{table_config.source_table!r} (it has: {', '.join(source.columns)})"
        )


def _prepare_target(
    wh: sa.Connection,
    dialect: Dialect,
    config: PipewardenConfig,
    table_config: TableConfig,
    source: TableShape,
    run: SyncRun,
) -> TableShape:
    """Step 2: create the warehouse table, or bring it in line with a source that gained columns."""
    schema = config.warehouse.schema_name
    with wh.begin():
        dialect.lock_for_write(wh)  # it reads the table's shape, then may create or alter it
        target = reflect_cached(wh, table_config.target_table, schema)
        if target is None:
            target = create_target(
                wh, dialect, table_config.target_table, schema, source, table_config.primary_key
            )
            write_kinds(wh, table_config.name, target.kinds)
            return target
        known = read_kinds(wh, table_config.name)
        target = TableShape(target.table, {n: known.get(n, k) for n, k in target.kinds.items()})
        drift = compare(source, target)
        refuse_breaking_drift(drift, table_config.source_table, target=target.table, sql=wh.dialect)
        if drift.added:
            target = add_columns(wh, dialect, target, source, drift.added)
            write_kinds(wh, table_config.name, {n: source.kinds[n] for n in drift.added})
            record_added_columns(wh, table_config.name, run.run_id, drift.added, source.kinds)
            run.schema_changes = [{"column": n, "change": "added"} for n in drift.added]
    return target


def _backfill(sides: _Sides, target: TableShape, options: SyncOptions, run: SyncRun) -> None:
    """Fill columns for rows the delta will not re-read (they did not change)."""
    source, table = sides.source, sides.table
    unknown = [c for c in options.backfill_columns if c not in source.kinds]
    if unknown:
        raise SchemaDriftError(
            f"--backfill-column: {', '.join(unknown)} not in source table {table.source_table!r}"
        )
    key = table.primary_key
    kinds = {n: source.kinds[n] for n in [*key, *options.backfill_columns]}
    # Key order is keyset order with the first key column as the "cursor".
    batches = read_batches(
        sides.src,
        sides.source_dialect,
        source.table,
        kinds,
        key[1:],
        key[0],
        None,
        table.batch_size,
    )
    for batch in batches:
        backfill(sides.wh, sides.target_dialect, target, key, batch, options.backfill_columns)
    with sides.wh.begin():
        mark_backfilled(sides.wh, table.name, options.backfill_columns)
    run.schema_changes += [{"column": c, "change": "backfilled"} for c in options.backfill_columns]


def _next_watermark(
    batch: pl.DataFrame,
    key: list[str],
    cursor: str,
    previous: Watermark | None,
    cap: datetime | None,
) -> Position | None:
    """The batch's last `(cursor, key)`, never behind the old watermark, never past `cap`.

    `cap` is the run's start or, if earlier, the start of the oldest transaction still open on
    the source: its rows, when it commits, carry cursor values from before it started.
    """
    last = last_position(batch, [cursor, *key])
    if last[0] is None:  # no row of the batch has a cursor it could be read by
        return None
    position = Position(last[0], tuple(last[1:]))
    if previous is not None and previous.cursor is not None:
        try:
            if (previous.cursor, previous.key or ()) > (position.cursor, position.key):
                position = Position(previous.cursor, previous.key or ())
        except TypeError:
            pass  # keys of different types cannot regress: keep the batch's position
    if cap is not None and isinstance(position.cursor, datetime) and position.cursor >= cap:
        position = Position(cap, ())
    return position


def _latency_seconds(cursor_values: pl.Series, since: Any) -> np.ndarray:
    """Seconds from each new row's cursor time to now, the moment it became visible.

    Rows at or before the previous watermark were re-read by the lookback and are, but for a
    late commit, already loaded: they would turn latency into the lookback's length.
    """
    now = pl.lit(datetime.now(UTC), dtype=pl.Datetime("us", "UTC"))
    frame = pl.DataFrame({"c": cursor_values.drop_nulls()})
    if isinstance(since, datetime):
        frame = frame.filter(pl.col("c") > pl.lit(since, dtype=pl.Datetime("us", "UTC")))
    micros = frame.select((now - pl.col("c")).dt.total_microseconds()).to_series()
    return micros.to_numpy().astype("float64") / 1e6
