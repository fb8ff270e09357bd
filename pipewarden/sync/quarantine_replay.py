"""Replaying the quarantine: check held rows again and load those that now pass.

After someone fixed the schema or the normalization, held rows are rebuilt from the JSON they were
kept as, normalized and validated by the table's current gate, and the passing ones go through the
sync's own staging and merge — so a replay never takes a row back past a newer version of it. A
held row whose key already has a newer version in the warehouse is marked superseded instead of
loaded. Rows that still fail stay held, with the reasons they fail for now. Everything — the
merge, the releases, the new reasons — commits in one transaction.
"""

import getpass
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import uuid4

import polars as pl
import sqlalchemy as sa

from pipewarden.alerts.announce import raise_alerts
from pipewarden.alerts.findings import from_quarantine
from pipewarden.checks.validation.gate import BatchGate, GatedBatch
from pipewarden.checks.validation.row_json import frame_from_json
from pipewarden.checks.validation.schema_gate import gate_for
from pipewarden.config import PipewardenConfig, TableConfig
from pipewarden.db.engines import cached_engine, connect
from pipewarden.dialects import dialect_for
from pipewarden.dialects.kinds import ColumnKind
from pipewarden.records import quarantine as q
from pipewarden.records.column_kinds import read_kinds
from pipewarden.records.migrate import ensure_tables
from pipewarden.records.sync_ledgers import forget_ledger
from pipewarden.sync.load import BatchLoader
from pipewarden.sync.schema import TableShape, reflect
from pipewarden.sync.screen import screen, unread_failures


class ReplayError(RuntimeError):
    """The replay cannot start (no warehouse table yet, a bad filter)."""


@dataclass
class ReplayResult:
    """What a replay did to the held rows it looked at."""

    table: str
    released_by: str
    examined: int = 0
    released: int = 0
    superseded: int = 0
    still_held: int = 0
    loaded: int = 0
    released_ids: list[int] = field(default_factory=list)
    #: The primary keys of the released rows, as held (`{"order_id": 2}`).
    released_keys: list[dict[str, Any]] = field(default_factory=list)
    #: Nothing was changed: the counts say what a replay would do.
    dry_run: bool = False
    #: The table's rows held after the replay (would be, on a dry run), `--where` or not.
    held_in_table: int = 0


def parse_where(filters: Sequence[str]) -> dict[str, str]:
    """`["status=lost", "currency=eur"]` → `{"status": "lost", "currency": "eur"}`."""
    out = {}
    for text in filters:
        column, sep, value = text.partition("=")
        if not sep or not column.strip():
            raise ReplayError(f"--where {text!r}: expected COLUMN=VALUE")
        out[column.strip()] = value
    return out


def matches(row: Mapping[str, Any], where: Mapping[str, str]) -> bool:
    """Every `column=value` holds for the row as it was read (`null` matches a NULL)."""
    for column, wanted in where.items():
        value = row.get(column)
        text = "null" if value is None else str(value).lower() if isinstance(value, bool) else value
        if str(text) != wanted:
            return False
    return True


def replay(
    config: PipewardenConfig,
    table_name: str,
    *,
    where: Mapping[str, str] | None = None,
    reason: str | None = None,
    by: str | None = None,
    gate_factory: Callable[[TableConfig, Mapping[str, ColumnKind]], BatchGate] = gate_for,
    dry_run: bool = False,
) -> ReplayResult:
    """Re-normalize and re-validate a table's held rows; load and release those that pass.

    `dry_run`: decide the same way, but load, release and update nothing.
    """
    table_config = config.table(table_name)
    result = ReplayResult(table_name, by or getpass.getuser(), dry_run=dry_run)
    warehouse = cached_engine(config.warehouse.url, config.timeouts.engine())
    ensure_tables(warehouse)
    with connect(warehouse) as wh:
        with wh.begin():
            target = reflect(wh, table_config.target_table, config.warehouse.schema_name)
            if target is None:
                raise ReplayError(
                    f"table {table_name}: warehouse table {table_config.target_table!r} "
                    "does not exist yet; run a sync first"
                )
            known = read_kinds(wh, table_name)
            held = q.entries(wh, table_name, reason=reason)
            held_before = q.held_count(wh, table_name)
        target = TableShape(target.table, {n: known.get(n, k) for n, k in target.kinds.items()})
        unknown = [c for c in (where or {}) if c not in target.kinds]
        if unknown:
            raise ReplayError(f"--where: no column {', '.join(map(repr, unknown))} in {table_name}")
        held = [e for e in held if matches(e.row, where or {})]
        result.examined = len(held)
        if not held:
            result.held_in_table = held_before
            if not dry_run:
                result.held_in_table = _announce(wh, config, table_name)
            return result
        dtypes = {n: k.polars_dtype() for n, k in target.kinds.items()}
        batch = frame_from_json([e.row_json for e in held], dtypes)
        gate = gate_factory(table_config, target.kinds)
        key, cursor = table_config.primary_key, table_config.cursor
        # No cursor: held rows sharing a key are all ambiguous, none is skipped as older.
        screened = screen(batch, key, None, dialect_for(wh.dialect.name), target.kinds)
        unread = unread_failures([e.reasons for e in held])
        gated = gate.check(batch, pl.concat([unread, screened.failures]))
        failing = _failing_positions(gated, batch.height)
        passing = [i for i in range(batch.height) if i not in failing]
        newer = _newer_in_warehouse(wh, target, key, cursor, gated.valid)
        release = _Release(
            released=[held[p].id for i, p in enumerate(passing) if i not in newer],
            superseded=[held[p].id for i, p in enumerate(passing) if i in newer],
            still_failing={held[p].id: r for p, r in zip(sorted(failing), gated.reasons)},
            by=result.released_by,
        )
        to_load = gated.valid.filter(~pl.int_range(0, pl.len()).is_in(sorted(newer)))
        if not dry_run:
            dialect = dialect_for(wh.dialect.name)
            with BatchLoader(wh, dialect, target, target.columns, key, cursor) as loader:
                outcome = loader.load(
                    GatedBatch(valid=to_load), release, table_name, f"replay-{uuid4()}"[:36], None
                )
            result.loaded = outcome.rows_loaded
            result.held_in_table = _announce(wh, config, table_name)
    result.released = len(release.released)
    result.released_ids = release.released
    by_id = {e.id: e.primary_key for e in held}
    result.released_keys = [by_id[i] for i in release.released]
    result.superseded = len(release.superseded)
    result.still_held = len(release.still_failing)
    if dry_run:
        result.held_in_table = held_before - result.released - result.superseded
    return result


def _announce(wh: sa.Connection, config: PipewardenConfig, table_name: str) -> int:
    """Close the table's quarantine incident (with its recovery alert) once no row is held;
    rows still held count as a repeat of it. Returns the table's rows held now."""
    with wh.begin():
        held = q.held_count(wh, table_name)
        raise_alerts(wh, config, [from_quarantine(table_name, held, [], None)])
    return held


def _failing_positions(gated: GatedBatch, height: int) -> set[int]:
    failures = getattr(gated, "failures", None)
    if failures is not None and failures.height:
        return set(failures["row"].unique().to_list())
    if gated.rejected_count:
        raise ReplayError("the gate rejected rows without saying which; cannot replay")
    return set()


def _newer_in_warehouse(
    conn: sa.Connection, target: TableShape, key: list[str], cursor: str, valid: pl.DataFrame
) -> set[int]:
    """Positions in `valid` whose key already has a newer version (by cursor) in the warehouse."""
    if valid.height == 0:
        return set()
    dialect = dialect_for(conn.dialect.name)

    def typed(name: str) -> Any:
        # Reflection sees SQLite's storage type (text); read values as the sync wrote them.
        return sa.type_coerce(target.table.c[name], dialect.column_type(target.kinds[name]))

    wanted = {
        tuple(r[:-1]): (i, r[-1]) for i, r in enumerate(valid.select(*key, cursor).iter_rows())
    }
    newer: set[int] = set()
    keys = list(wanted)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        if len(key) == 1:
            match = typed(key[0]).in_([k[0] for k in chunk])
        else:
            match = sa.tuple_(*(typed(k) for k in key)).in_(chunk)
        with conn.begin():
            rows = conn.execute(sa.select(*(typed(k) for k in key), typed(cursor)).where(match))
            for row in rows:
                found = wanted.get(tuple(row[:-1]))
                if found is not None and _later(row[-1], found[1]):
                    newer.add(found[0])
    return newer


def _later(stored: Any, incoming: Any) -> bool:
    if stored is None or incoming is None:
        return False
    both_times = isinstance(stored, datetime) and isinstance(incoming, datetime)
    if both_times and (stored.tzinfo is None) != (incoming.tzinfo is None):
        # SQLite hands back UTC wall-clock time without a zone.
        stored, incoming = stored.replace(tzinfo=None), incoming.replace(tzinfo=None)
    try:
        return bool(stored > incoming)
    except TypeError:
        return False


@dataclass
class _Release:
    """The replay's gate for the loader: records releases in the load's own transaction."""

    released: list[int]
    superseded: list[int]
    still_failing: dict[int, list[dict[str, Any]]]
    by: str
    transforms = False

    def check(self, batch: pl.DataFrame, failures: pl.DataFrame | None = None) -> GatedBatch:
        return GatedBatch(valid=batch)

    def keep_rejected(
        self, conn: sa.Connection, table_name: str, run_id: str, gated: GatedBatch
    ) -> int:
        q.mark_released(conn, self.released, self.by)
        forget_ledger(conn, table_name)  # rows loaded besides the sync: its ledger is stale
        q.mark_superseded(conn, self.superseded, None)
        for entry_id, reasons in self.still_failing.items():
            q.update_reasons(conn, entry_id, reasons)
        return 0


__all__ = ["ReplayError", "ReplayResult", "matches", "parse_where", "replay"]
