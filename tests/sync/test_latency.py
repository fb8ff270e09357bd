"""The run's latency summary: exact for a delta, bounded for a load of millions."""

import numpy as np

from pipewarden.sync.latency import Latencies


def test_every_value_is_kept_while_they_fit() -> None:
    latencies = Latencies(size=1000)
    batches = [np.arange(300, dtype=float) + 1000 * i for i in range(3)]
    for batch in batches:
        latencies.add(batch)
    values = np.concatenate(batches)
    assert latencies.percentile(50) == np.percentile(values, 50)
    assert latencies.percentile(95) == np.percentile(values, 95)
    assert latencies.maximum == values.max()


def test_a_large_run_keeps_a_uniform_sample_and_the_exact_maximum() -> None:
    latencies = Latencies(size=2000)
    for start in range(0, 100_000, 10_000):
        latencies.add(np.arange(start, start + 10_000, dtype=float))
    assert latencies.values.size == 2000
    assert latencies.maximum == 99_999
    # A uniform sample of 0 … 99,999: its median is near 50,000, not the last batches'.
    assert abs((latencies.percentile(50) or 0) - 50_000) < 5_000
    assert abs((latencies.percentile(95) or 0) - 95_000) < 3_000


def test_no_rows_no_figure() -> None:
    latencies = Latencies()
    latencies.add(np.empty(0))
    assert latencies.percentile(50) is None
