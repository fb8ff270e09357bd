"""Labelled windows (the NAB format) and how flags are scored against them.

The definitions are those of the shared evaluation script: the first 15% of a series is
probation and not scored; a window counts as found when a flagged point lies inside it; a false
alarm is a run of consecutive flagged points outside every window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel

PROBATION = 0.15

Window = tuple[datetime, datetime]


class WindowScore(BaseModel):
    """How one series' flags fare against its labelled windows."""

    windows: int
    windows_found: int
    false_alarms: int
    scored_points: int


def parse_timestamp(text: str) -> datetime:
    """Timestamps as the evaluation script reads them; aware ones become naive UTC."""
    text = text.strip().replace("T", " ")
    for fmt in ("%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M"):
        try:
            return datetime.strptime(text, fmt)
        except ValueError:
            pass
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC)
    return parsed.replace(tzinfo=None)


def load_windows(path: Path) -> dict[str, list[Window]]:
    """{relative series path: [(start, end), ...]} from a windows.json file."""
    raw = json.loads(Path(path).read_text())
    return {
        key: [(parse_timestamp(a), parse_timestamp(b)) for a, b in spans]
        for key, spans in raw.items()
    }


def windows_for(labels: dict[str, list[Window]], relative: str) -> list[Window] | None:
    """The windows of a series by its relative path, else by a unique file-name match."""
    if relative in labels:
        return labels[relative]
    name = Path(relative).name
    matches = [key for key in labels if Path(key).name == name]
    return labels[matches[0]] if len(matches) == 1 else None


def score_windows(
    timestamps: Sequence[datetime], flags: Sequence[bool], windows: Sequence[Window]
) -> WindowScore:
    """Windows found and false alarms, after the probation period."""
    first = int(len(timestamps) * PROBATION)
    hit = [False] * len(windows)
    alarms, in_run = 0, False
    for i in range(first, len(timestamps)):
        if not flags[i]:
            in_run = False
            continue
        found = False
        for k, (start, end) in enumerate(windows):
            if start <= timestamps[i] <= end:
                hit[k] = found = True
        if not found and not in_run:
            alarms += 1
        in_run = not found
    if first >= len(timestamps):
        scored = []
    else:
        scored = [k for k, (_, end) in enumerate(windows) if end >= timestamps[first]]
    return WindowScore(
        windows=len(scored),
        windows_found=sum(hit[k] for k in scored),
        false_alarms=alarms,
        scored_points=len(timestamps) - first,
    )
