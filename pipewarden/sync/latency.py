"""The new rows' latencies of one run, summed up in bounded memory.

A delta's few thousand rows are kept exactly; a load of millions would otherwise hold eight bytes
per row until the run ends (80 MB at 10,000,000 rows, twice that while they are concatenated).
Past `SAMPLE` rows the percentiles come from a uniform sample: the values with the `SAMPLE`
smallest random keys (bottom-k sampling, as the column profiles' reservoir), so the sample stays
uniform over every batch seen; the maximum stays exact.
"""

from dataclasses import dataclass, field

import numpy as np

#: Values kept: every value of a run with fewer new rows, a uniform sample of a larger one.
SAMPLE = 100_000


@dataclass
class Latencies:
    """Seconds from each new row's cursor time to its load, batch after batch."""

    size: int = SAMPLE
    values: np.ndarray = field(default_factory=lambda: np.empty(0))
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    maximum: float = -np.inf
    _rng: np.random.Generator = field(default_factory=np.random.default_rng)

    def add(self, seconds: np.ndarray) -> None:
        if not seconds.size:
            return
        self.maximum = max(self.maximum, float(seconds.max()))
        values = np.concatenate([self.values, seconds])
        keys = np.concatenate([self.keys, self._rng.random(seconds.size)])
        if values.size > self.size:
            kept = np.argpartition(keys, self.size)[: self.size]
            values, keys = values[kept], keys[kept]
        self.values, self.keys = values, keys

    def percentile(self, q: float) -> float | None:
        return float(np.percentile(self.values, q)) if self.values.size else None
