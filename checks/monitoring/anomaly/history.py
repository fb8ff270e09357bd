"""Histories as real exports have them: rows out of order, repeated timestamps, gaps.

The detector reads a series in time order with one value per instant. `tidy` makes it so and
says what it did, so a backtest or a check can report it instead of refusing the data:

- rows are sorted by time (stably: rows with the same instant keep their order);
- rows sharing an instant (a clock set back at a daylight-saving change, a row exported twice)
  become one point whose value is the **median** of theirs (for two rows, their mean): a
  duplicated row keeps its value, two readings of a repeated hour give their middle, and one
  wild copy among several cannot move it;
- gaps are left as they are (the baselines are in time, not in points) and counted: an interval
  longer than `GAP_STEPS` typical steps (the median interval) is a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

#: Intervals longer than this many typical steps count as gaps in the report.
GAP_STEPS = 3.0


@dataclass(frozen=True)
class TidyHistory:
    """A history in ascending, unique time order, and how it was made from the rows read."""

    instants: np.ndarray  # int64, ascending, unique, in the unit they were given
    values: np.ndarray  # float64, one per instant
    point_of_row: np.ndarray  # for each row read, the index of its point
    out_of_order: int  # rows that came earlier in time than the row before them
    repeated: int  # rows merged into the point of an earlier row with the same instant
    gaps: int  # intervals longer than GAP_STEPS typical steps
    longest_gap: int  # the longest interval, in the instants' unit (0 without a gap)

    @property
    def changed(self) -> bool:
        return bool(self.out_of_order or self.repeated)

    def describe(self, unit_seconds: float = 1.0) -> str:
        """What was done, in words for a report ("" when the rows were already in order)."""
        parts = []
        if self.out_of_order:
            parts.append(f"sorted {self.out_of_order} rows out of order")
        if self.repeated:
            parts.append(f"merged {self.repeated} repeated timestamps (median of their values)")
        if self.gaps:
            longest = _duration(self.longest_gap * unit_seconds)
            parts.append(f"{self.gaps} gaps (longest {longest})")
        return "; ".join(parts)


def tidy(instants: Sequence[int] | np.ndarray, values: Sequence[float] | np.ndarray) -> TidyHistory:
    """Sorted, one point per instant (median of repeats), with what was done; see the module."""
    instants = np.asarray(instants, dtype=np.int64)
    values = np.asarray(values, dtype=np.float64)
    if len(instants) != len(values):
        raise ValueError(f"{len(instants)} timestamps for {len(values)} values")
    steps = np.diff(instants)
    out_of_order = int((steps < 0).sum())
    if out_of_order == 0 and not (steps == 0).any():
        point_of_row = np.arange(len(instants))
        return TidyHistory(instants, values, point_of_row, 0, 0, *_gaps(steps))
    order = np.argsort(instants, kind="stable")
    ordered = instants[order]
    first = np.concatenate(([True], ordered[1:] != ordered[:-1]))
    label_sorted = np.cumsum(first) - 1
    point_of_row = np.empty(len(instants), dtype=np.int64)
    point_of_row[order] = label_sorted
    unique = ordered[first]
    repeated = len(instants) - len(unique)
    if repeated:
        merged = ndimage.median(values, labels=point_of_row, index=np.arange(len(unique)))
        merged = np.asarray(merged, dtype=np.float64)
    else:
        merged = values[order]
    return TidyHistory(
        unique, merged, point_of_row, out_of_order, repeated, *_gaps(np.diff(unique))
    )


def _gaps(steps: np.ndarray) -> tuple[int, int]:
    if len(steps) == 0:
        return 0, 0
    typical = float(np.median(steps))
    long = steps > GAP_STEPS * max(typical, 1.0)
    return int(long.sum()), int(steps.max()) if long.any() else 0


def _duration(seconds: float) -> str:
    if seconds >= 86_400:
        return f"{seconds / 86_400:.3g} d"
    if seconds >= 3_600:
        return f"{seconds / 3_600:.3g} h"
    if seconds >= 60:
        return f"{seconds / 60:.3g} min"
    return f"{seconds:.3g} s"
