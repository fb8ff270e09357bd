"""The gate between extract and load: which rows of a batch may load, and where the others go.

The sync only knows this interface; `checks` provides the gate that normalizes, validates with
Pandera and quarantines. Without checks configured every row passes.
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
    def check(self, batch: pl.DataFrame) -> GatedBatch:
        """Normalize and validate; never raises for bad rows, only sets them aside."""
        ...

    def keep_rejected(
        self, conn: sa.Connection, table_name: str, run_id: str, gated: GatedBatch
    ) -> int:
        """Store rejected rows in the load's transaction; returns how many were kept."""
        ...


class PassThroughGate:
    """Every row loads: the gate of a table without checks."""

    def check(self, batch: pl.DataFrame) -> GatedBatch:
        return GatedBatch(valid=batch)

    def keep_rejected(
        self, conn: sa.Connection, table_name: str, run_id: str, gated: GatedBatch
    ) -> int:
        return 0
