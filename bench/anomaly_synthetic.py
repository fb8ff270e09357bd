"""Seeded synthetic series with labelled anomaly windows, for judging the detector on data it was
never tuned on. Three groups, after the kinds of series pipewarden watches:

- `cloud/`: 5-minute server metrics over two weeks (CPU, latency, network bytes): noisy,
  autocorrelated, with normal spikes of heavy-tailed size, some with a daily rhythm. Anomalies:
  level shifts up or down, slow ramps, bursts of large spikes, an outage that drops to zero.
- `long/`: long series with several regimes (half-hourly demand with daily and weekly rhythm
  over months; machine temperatures every 5 minutes whose normal level wanders between
  regimes). Anomalies: a holiday-like day off the weekly pattern, a failure drop, a slow rise
  before a failure, a demand surge.
- `traffic/`: road sensors sampled irregularly (3 to 12 minutes, with gaps of hours), rush-hour
  dips on weekdays, written in local time, so the hour at the end of daylight saving repeats,
  and with a few rows out of order. Anomalies: an accident (speed drops for an hour or two), a
  stuck sensor (a flat line at an odd value).

Windows follow the NAB convention the shared scorer uses: each anomaly's window is centred on
its start and 10% of the series long, divided by the number of anomalies. No anomaly starts in
the first 20% (the scorer's probation is 15%).

    python bench/anomaly_synthetic.py OUTPUT_FOLDER [--seed N]

writes OUTPUT_FOLDER/<group>/<name>.csv (timestamp,value) and OUTPUT_FOLDER/windows.json.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

FIVE_MINUTES = 300.0
SERIES_PER_KIND = 6


@dataclass
class Series:
    """One generated series: instants (seconds), values, and the index where each anomaly
    starts."""

    seconds: np.ndarray
    values: np.ndarray
    anomalies: list[int] = field(default_factory=list)
    local_time: bool = False  # written as naive local time (Europe-like DST), rows shuffled a bit


def _ar1(rng: np.random.Generator, n: int, phi: float, sigma: float) -> np.ndarray:
    """Autocorrelated noise of standard deviation `sigma`."""
    shocks = rng.normal(0, sigma * np.sqrt(1 - phi * phi), n)
    out = np.empty(n)
    out[0] = rng.normal(0, sigma)
    for i in range(1, n):
        out[i] = phi * out[i - 1] + shocks[i]
    return out


def _starts(rng: np.random.Generator, n: int, count: int) -> list[int]:
    """Anomaly starts after the first 20%, at least a tenth of the series apart."""
    while True:
        starts = sorted(int(s) for s in rng.integers(int(0.2 * n), int(0.95 * n), count))
        if all(b - a > n // 10 for a, b in zip(starts, starts[1:], strict=False)):
            return starts


def _daily(seconds: np.ndarray, peak_hour: float) -> np.ndarray:
    hours = (seconds / 3600.0) % 24
    return np.cos(2 * np.pi * (hours - peak_hour) / 24)


def _normal_spikes(rng: np.random.Generator, n: int, rate: float, size: float) -> np.ndarray:
    """Spikes that are part of normal life: Pareto-sized, at random points."""
    spikes = np.zeros(n)
    where = rng.random(n) < rate
    spikes[where] = size * (rng.pareto(3.0, where.sum()) + 0.5)
    return spikes


def cloud(rng: np.random.Generator, variant: int) -> Series:
    n = 14 * 288
    # The last variant is exported in local time across the end of daylight saving: an hour of
    # timestamps repeats.
    local = variant == 5
    seconds = (1_413_800_000 if local else 1_400_000_000) + FIVE_MINUTES * np.arange(n)
    level = rng.uniform(5, 80)
    sigma = level * rng.uniform(0.03, 0.12)
    # Noise whose size changes between unlabelled regimes (a busier week is no incident).
    regime = np.repeat(rng.uniform(0.6, 1.6, 4), -(-n // 4))[:n]
    values = level + regime * _ar1(rng, n, rng.uniform(0.3, 0.9), sigma)
    if variant % 2 == 0:
        values += 0.3 * level * _daily(seconds, rng.uniform(0, 24))
    values += _normal_spikes(rng, n, rng.uniform(0.002, 0.01), 3 * sigma)
    kinds: list[Callable[[np.ndarray, int], None]] = []

    def shift(v: np.ndarray, s: int) -> None:
        v[s:] += rng.choice([-1, 1]) * rng.uniform(3, 10) * sigma

    def ramp(v: np.ndarray, s: int) -> None:
        length = int(rng.integers(36, 200))
        rise = rng.uniform(4, 14) * sigma
        v[s : s + length] += np.linspace(0, rise, len(v[s : s + length]))
        v[s + length :] += rise

    def burst(v: np.ndarray, s: int) -> None:
        hits = s + rng.integers(0, 24, 6)
        v[hits] += rng.uniform(6, 15) * sigma + rng.uniform(0, 0.5) * level

    def outage(v: np.ndarray, s: int) -> None:
        v[s : s + int(rng.integers(6, 36))] = rng.uniform(0, 0.05) * level

    kinds = [shift, ramp, burst, outage]
    starts = [] if variant == 3 else _starts(rng, n, 1 + variant % 2)
    for k, s in enumerate(starts):
        kinds[(variant + k) % len(kinds)](values, s)
    return Series(seconds, np.maximum(values, 0.0).round(3), starts, local_time=local)


def long(rng: np.random.Generator, variant: int) -> Series:
    if variant % 2 == 0:  # demand: half-hourly, daily and weekly rhythm, over seven months
        n = 210 * 48
        seconds = 1_400_000_000 + 1800.0 * np.arange(n)
        day = (seconds // 86_400 + 3) % 7
        weekly = np.where(day >= 5, 0.7, 1.0)
        base = rng.uniform(5_000, 20_000)
        trend = 1 + 0.15 * np.sin(2 * np.pi * np.arange(n) / n)  # a slow seasonal swing
        rhythm = 1 + 0.6 * _daily(seconds, 18.0)
        values = base * trend * weekly * rhythm * (1 + _ar1(rng, n, 0.5, 0.05))
        starts = _starts(rng, n, 2)
        # A holiday: a weekday at the weekend's level; a surge: a night busier than noon.
        values[starts[0] : starts[0] + 48] *= rng.uniform(0.55, 0.8)
        surge = slice(starts[1], starts[1] + 8)
        values[surge] += base * rng.uniform(0.5, 1.6)
        return Series(seconds, values.round(0), starts)
    # machine temperature: 5-minute, regimes whose level wanders, a failure
    n = 80 * 288
    seconds = 1_400_000_000 + FIVE_MINUTES * np.arange(n)
    regimes = np.repeat(rng.uniform(70, 95, 8), -(-n // 8))[:n]
    level = np.convolve(regimes, np.ones(600) / 600, mode="same")  # regimes change slowly
    sigma = rng.uniform(0.8, 2.0)
    values = level + _ar1(rng, n, 0.95, sigma)
    starts = _starts(rng, n, 2)
    rise = slice(starts[0], starts[0] + 288)  # a slow rise over a day, then a failure drop
    values[rise] += np.linspace(0, 12 * sigma, 288)
    drop = slice(starts[0] + 288, starts[0] + 288 + 60)
    values[drop] = rng.uniform(20, 40) + rng.normal(0, sigma, 60)
    values[starts[1] : starts[1] + 24] -= rng.uniform(5, 25) * sigma
    return Series(seconds, values.round(3), [starts[0], starts[1]])


def traffic(rng: np.random.Generator, variant: int) -> Series:
    gaps = rng.integers(3, 13, 4_000) * 60.0  # whole minutes: the repeated hour repeats some
    gaps[rng.random(len(gaps)) < 0.004] += rng.integers(60, 360) * 60.0  # sensor outages
    seconds = 1_413_500_000 + np.cumsum(gaps)  # spans the end of daylight saving in October
    n = len(seconds)
    weekday = ((seconds // 86_400 + 3) % 7) < 5
    hours = (seconds / 3600.0) % 24
    rush = np.exp(-((hours - 8.0) ** 2) / 1.5) + np.exp(-((hours - 17.5) ** 2) / 2.0)
    free = rng.uniform(55, 70)
    speed = free - weekday * rush * rng.uniform(15, 25) + rng.normal(0, rng.uniform(2, 4), n)
    starts = _starts(rng, n, 1 + variant % 2)
    for k, s in enumerate(starts):
        if (variant + k) % 2 == 0:  # an accident
            until = np.searchsorted(seconds, seconds[s] + rng.uniform(3_600, 2 * 3_600))
            speed[s:until] *= rng.uniform(0.3, 0.7)
        else:  # a stuck sensor
            until = np.searchsorted(seconds, seconds[s] + rng.uniform(2 * 3_600, 5 * 3_600))
            speed[s:until] = free * rng.uniform(0.2, 0.35)
    return Series(seconds.round(0), np.maximum(speed, 0).round(1), starts, local_time=True)


GROUPS: dict[str, Callable[[np.random.Generator, int], Series]] = {
    "cloud": cloud,
    "long": long,
    "traffic": traffic,
}


def _local_texts(seconds: np.ndarray) -> list[str]:
    """Naive local time one hour ahead of UTC, two in summer (the last Sunday of October ends
    it at 01:00 UTC): the hour after the change repeats the hour before it."""
    out = []
    for s in seconds.tolist():
        utc = datetime(1970, 1, 1) + timedelta(seconds=s)
        october_end = datetime(utc.year, 10, 31)
        last_sunday = october_end - timedelta(days=(october_end.weekday() + 1) % 7)
        march_end = datetime(utc.year, 3, 31)
        last_march_sunday = march_end - timedelta(days=(march_end.weekday() + 1) % 7)
        summer = last_march_sunday + timedelta(hours=1) <= utc < last_sunday + timedelta(hours=1)
        out.append(f"{utc + timedelta(hours=2 if summer else 1):%Y-%m-%d %H:%M:%S}")
    return out


def write(series: Series, path: Path, rng: np.random.Generator) -> list[list[str]]:
    """The CSV, and its windows in the NAB format."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if series.local_time:
        texts = _local_texts(series.seconds)
    else:
        texts = [
            f"{datetime(1970, 1, 1) + timedelta(seconds=s):%Y-%m-%d %H:%M:%S}"
            for s in series.seconds.tolist()
        ]
    n = len(texts)
    half = int(0.1 * n / max(1, len(series.anomalies))) // 2
    windows = [[texts[max(0, s - half)], texts[min(n - 1, s + half)]] for s in series.anomalies]
    rows = list(zip(texts, series.values.tolist(), strict=True))
    if series.local_time:  # a few neighbouring rows swapped, as a careless export has them
        for i in rng.integers(1, n - 1, 5).tolist():
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        writer.writerows(rows)
    return windows


def generate(folder: Path, seed: int = 0) -> Path:
    """Writes every group's series and windows.json under `folder`; returns the labels' path."""
    labels: dict[str, list[list[str]]] = {}
    for g, (group, make) in enumerate(GROUPS.items()):
        for variant in range(SERIES_PER_KIND):
            rng = np.random.default_rng([seed, g, variant])
            name = f"{group}/{group}_{variant}.csv"
            labels[name] = write(make(rng, variant), Path(folder) / name, rng)
    path = Path(folder) / "windows.json"
    path.write_text(json.dumps(labels, indent=1))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(generate(args.folder, args.seed))


if __name__ == "__main__":
    main()
