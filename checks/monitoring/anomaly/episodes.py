"""Episodes: consecutive anomalous points of a series are one episode, not one alert each
(the detector's own notion; the incidents people are alerted about are `records.incidents`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from pydantic import BaseModel, ConfigDict


class _Scored(Protocol):
    timestamp: datetime
    score: float
    is_anomaly: bool


class Episode(BaseModel):
    """A run of anomalous points: when it started and ended, how many, how bad at worst."""

    model_config = ConfigDict(frozen=True)

    start: datetime
    end: datetime
    points: int
    peak_score: float


def group_episodes(verdicts: Sequence[_Scored]) -> list[Episode]:
    """One episode per run of consecutive anomalous verdicts."""
    episodes: list[Episode] = []
    run: list[_Scored] = []
    for verdict in [*verdicts, None]:
        if verdict is not None and verdict.is_anomaly:
            run.append(verdict)
            continue
        if run:
            peak = max(run, key=lambda v: abs(v.score)).score
            episodes.append(
                Episode(
                    start=run[0].timestamp, end=run[-1].timestamp, points=len(run), peak_score=peak
                )
            )
            run = []
    return episodes


class EpisodeTracker:
    """Follows the open episode while a series is replayed.

    An episode stays open across up to `quiet_points` normal points, so a shift that crosses the
    band now and then is one episode. When an episode has lasted `new_normal_after` seconds the
    change is taken as the new normal: the detector re-baselines on it instead of flagging forever.
    """

    def __init__(self, quiet_points: int, new_normal_after: float) -> None:
        self.quiet_points = quiet_points
        self.new_normal_after = new_normal_after
        self.start: float | None = None
        self.members: list[int] = []
        self.accepted = False
        self._quiet = 0

    def observe(self, index: int, time: float, anomalous: bool) -> bool:
        """Record a point; True when the open episode has just become the new normal."""
        if not anomalous:
            if self.start is not None:
                self._quiet += 1
                if self._quiet > self.quiet_points:
                    self.start, self.members, self.accepted, self._quiet = None, [], False, 0
            return False
        self._quiet = 0
        if self.start is None:
            self.start = time
        self.members.append(index)
        long_enough = time - self.start >= self.new_normal_after and len(self.members) >= 3
        if not self.accepted and long_enough:
            self.accepted = True
            return True
        return False
