"""The gate between extract and load: which rows of a batch may load, and where the others go.

The sync loads through this interface; `schema_gate.SchemaGate` is the gate that normalizes,
validates with Pandera and quarantines. It lives here, below the sync, so that the checks never
import the sync (the layers of docs/architecture.md).
"""

from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl
import sqlalchemy as sa


@dataclass
class GatedBatch:
    """A batch split into rows that load and rows that are held back, with their reasons."""

    valid: pl.DataFrame
    rejected: pl.DataFrame | None = None
    reasons: list[list[dict[str, Any]]] = field(default_factory=list)

    @property
    def rejected_count(self) -> int:
        return 0 if self.rejected is None else self.rejected.height


class BatchGate(Protocol):
    @property
    def transforms(self) -> bool:
        """The gate may change or hold rows that the screen lets through (it has checks)."""
        ...

    def check(self, batch: pl.DataFrame, failures: pl.DataFrame | None = None) -> GatedBatch:
        """Normalize and validate; never raises for bad rows, only sets them aside.

        `failures` are the screen's (`sync.screen`): rows that fail whatever the checks say.
        """
        ...

    def keep_rejected(
        self, conn: sa.Connection, table_name: str, run_id: str, gated: GatedBatch
    ) -> int:
        """Store rejected rows in the load's transaction; returns how many were kept."""
        ...


class PassThroughGate:
    """Every row loads, and none can be kept: the gate of a repair given no gate of its own
    (every sync applies `checks.validation.schema_gate.gate_for`, which quarantines)."""

    transforms = False

    def check(self, batch: pl.DataFrame, failures: pl.DataFrame | None = None) -> GatedBatch:
        if failures is None or failures.height == 0:
            return GatedBatch(valid=batch)
        bad = pl.int_range(0, pl.len(), dtype=pl.UInt32).is_in(failures["row"].implode())
        reasons = [
            [r for r in failures.to_dicts() if r["row"] == row]
            for row in sorted(set(failures["row"].to_list()))
        ]
        return GatedBatch(valid=batch.filter(~bad), rejected=batch.filter(bad), reasons=reasons)

    def keep_rejected(
        self, conn: sa.Connection, table_name: str, run_id: str, gated: GatedBatch
    ) -> int:
        if gated.rejected_count:
            first = gated.reasons[0][0]
            raise ValueError(
                f"table {table_name}: {gated.rejected_count} row(s) cannot load (column "
                f"{first['column']}: {first['check']}) and this run "
                "has no quarantine: sync with the checks' gate "
                "(checks.validation.schema_gate.gate_for)"
            )
        return 0
