"""One differing row, as the steps after the comparison read it."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from pipewarden.reconcile.keys import Key


@dataclass(slots=True)
class RowDiff:
    """One row that differs: `missing` (source only), `extra` (target only) or `changed`."""

    kind: str
    key: Key
    source_hash: Any = None
    target_hash: Any = None
    #: The differing columns of a changed row (a tuple until named: one less object a row).
    columns: Sequence[str] = ()
    #: The key as the target's driver returned it (it may differ in type from the source's).
    target_key: Key | None = None
