"""What a check found, and how much it matters: the one record that travels from a check to
its alert.

A check (freshness, an anomaly detector, a column monitor), a sync run or a reconciliation
states its outcome as `Evidence`: the status, the observed value against the expected band, the
method that drew the band, why, and the run that found it. The same object is recorded
(`pipewarden_check_results`), judged (`alerts.findings.Finding`), raised into the outbox
(`records.alerts.Alert`) and shown in Slack. Tables and JSON convert it at their edge only.

Every status has one `Severity`, the one scale pipewarden ranks outcomes by: ok < warn < error.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from typing import Final

#: Check statuses (`pipewarden_check_results.status`).
OK: Final = "ok"
WARN: Final = "warn"
ERROR: Final = "error"
ANOMALY: Final = "anomaly"
INSUFFICIENT: Final = "insufficient_history"
#: Statuses of runs and deliveries: a sync or reconciliation that failed, differences from
#: the source, a clean reconciliation, an alert delivered or waiting for another attempt.
FAILED: Final = "failed"
DIFFERENCES: Final = "differences"
CLEAN: Final = "clean"
DELIVERED: Final = "delivered"
RETRYING: Final = "retrying"
#: Statuses of notices: a column the source added, a repair that wrote an older row back, an
#: incident closed because its check no longer gives a result.
ADDED: Final = "added"
REWRITTEN: Final = "rewritten"
UNCHECKED: Final = "unchecked"


class Severity(IntEnum):
    """How much an outcome needs attention, in this order: ok < warn < error.

    The value is what metrics plot (`check_outcome`, `<kind>_outcome`: 0, 1, 2).
    `pipewarden_incidents`, `pipewarden_alerts` and `alerts --json` carry `column` (0, 2, 3),
    the numbers they have held since their first release.
    """

    OK = 0
    WARN = 1
    ERROR = 2

    @classmethod
    def of(cls, status: str) -> "Severity":
        """The severity of a status; a status without one is a programming error."""
        try:
            return _STATUS_SEVERITY[status]
        except KeyError:
            raise ValueError(f"no severity for the status {status!r}") from None

    @property
    def label(self) -> str:
        """`ok`, `warn` or `error`, as messages say it."""
        return self.name.lower()

    @property
    def column(self) -> int:
        """The number stored in the severity columns of pipewarden's tables."""
        return _COLUMN[self]

    @classmethod
    def from_column(cls, number: int) -> "Severity":
        """The severity a stored number stands for."""
        return cls.ERROR if number >= _COLUMN[cls.ERROR] else cls.WARN if number else cls.OK


_COLUMN = {Severity.OK: 0, Severity.WARN: 2, Severity.ERROR: 3}
_STATUS_SEVERITY = {
    **dict.fromkeys((OK, CLEAN, DELIVERED, INSUFFICIENT, ADDED, REWRITTEN, UNCHECKED), Severity.OK),
    **dict.fromkeys((WARN, ANOMALY, DIFFERENCES, RETRYING), Severity.WARN),
    **dict.fromkeys((ERROR, FAILED), Severity.ERROR),
}


@dataclass(frozen=True)
class Evidence:
    """One outcome of one check of one table, with everything a record, an alert and a
    message need to say why: the observed value (measured at `observed_at`) against the
    expected band `[expected_low, expected_high]`, its score, the method and the history size
    behind the band, the reason in words, and the pipewarden run that found it."""

    table_name: str
    check: str
    status: str
    observed: float | None = None
    observed_at: datetime | None = None
    expected_low: float | None = None
    expected_high: float | None = None
    score: float | None = None
    method: str | None = None
    reason: str | None = None
    history_size: int | None = None
    run_id: str | None = None

    @property
    def severity(self) -> Severity:
        return Severity.of(self.status)

    @property
    def failing(self) -> bool:
        """Warn or error: worth an incident (and an exit code of 1 from `pipewarden check`)."""
        return self.severity > Severity.OK


def worst_status(statuses: Iterable[str]) -> str:
    """The status a table shows for several checks: the most severe (the first of equals)."""
    return max(statuses, key=Severity.of, default=OK)
