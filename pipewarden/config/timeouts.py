"""How long a database call may wait: connecting, running, waiting for a lock. None is for ever.

The limits are configuration (`timeouts:`, `TimeoutsConfig.engine()`); every engine pipewarden
creates gets them from its dialect (`Dialect.engine_options`), and `db.timeouts` names the limit
a call ran past.
"""

from dataclasses import dataclass
from typing import Literal

TimeoutKind = Literal["lock", "statement"]


@dataclass(frozen=True)
class Timeouts:
    """Limits in seconds; the defaults fit a sync batch, a reconciliation's bucket query."""

    connect: float = 10.0
    statement: float = 1800.0
    lock: float = 60.0

    def seconds(self, kind: TimeoutKind) -> float:
        return self.lock if kind == "lock" else self.statement


DEFAULT_TIMEOUTS = Timeouts()
