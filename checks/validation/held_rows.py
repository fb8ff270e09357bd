"""What a run remembers of a table's quarantine: which held rows a batch supersedes, which it adds.

The held rows (key and row as JSON) are read once per run. Each batch then supersedes the held
rows whose key arrives as a valid row, or as a bad row that differs from the held one; a bad row
already held exactly as it is (a lookback re-read) is not held twice.

The valid rows' keys are matched by a join on the key columns in their JSON-safe form
(`row_json.json_safe`: integers and text as they are, instants and decimals as their text),
which equals matching the key's JSON text without writing JSON for every valid row.
"""

from collections.abc import Sequence

import polars as pl
import sqlalchemy as sa

from pipewarden.checks.validation.row_json import json_safe, json_safe_from_json, row_json
from pipewarden.records import quarantine as q

#: Column names of the key's and the row's JSON text (not valid SQL names: no clash with a table's).
KEY, ROW = "pipewarden:key", "pipewarden:row"


class HeldRows:
    """One table's held rows during one run: key columns (JSON-safe), key JSON, row JSON."""

    def __init__(self, key: Sequence[str]) -> None:
        self.key = list(key)
        self._frame: pl.DataFrame | None = None

    def incoming(self, rejected: pl.DataFrame) -> pl.DataFrame:
        """Rejected rows as the quarantine keeps them: key columns, key JSON, row JSON."""
        return json_safe(rejected.select(self.key)).with_columns(
            row_json(rejected, self.key).alias(KEY), row_json(rejected).alias(ROW)
        )

    def supersede(
        self,
        conn: sa.Connection,
        table_name: str,
        run_id: str,
        valid: pl.DataFrame,
        new: pl.DataFrame,
    ) -> pl.DataFrame:
        """Mark the held rows this batch replaces; returns the rows of `new` to hold."""
        held = self._held(conn, table_name, valid.select(self.key).schema)
        if held.height == 0:
            return new
        stale = pl.concat(
            [
                held.join(json_safe(valid.select(self.key)), on=self.key, how="semi"),
                held.join(new, on=KEY, how="semi").join(new, on=[KEY, ROW], how="anti"),
            ]
        ).unique()
        if stale.height:
            q.mark_superseded_rows(conn, table_name, stale.select(KEY, ROW).rows(), run_id)
            held = held.join(stale, on=[KEY, ROW], how="anti")
        self._frame = held
        return new.join(held, on=[KEY, ROW], how="anti")

    def add(self, held: pl.DataFrame) -> None:
        """Remember rows just held (after `supersede`, in the same transaction)."""
        if self._frame is not None and held.height:
            rows = held.select(self._frame.columns).unique()
            self._frame = pl.concat([self._frame, rows])

    def _held(self, conn: sa.Connection, table_name: str, key_schema: pl.Schema) -> pl.DataFrame:
        if self._frame is None:
            rows = q.held_keys(conn, table_name)
            texts = pl.DataFrame(
                {KEY: [r[1] for r in rows], ROW: [r[2] for r in rows]},
                schema={KEY: pl.String, ROW: pl.String},
            )
            keys = json_safe_from_json(texts[KEY], dict(key_schema))
            self._frame = pl.concat([keys, texts], how="horizontal").unique()
        return self._frame
