"""Column profiles accumulated over batches: exact where cheap, bounded sketches elsewhere."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import numpy as np
import polars as pl

from pipewarden.measurements.profiles import (
    DISTINCT_SKETCH,
    RESERVOIR,
    ProfileAccumulator,
    profile_batch,
)


def _points(acc: ProfileAccumulator) -> dict[tuple[str, str], float]:
    return {(p.metric, (p.labels or {}).get("column", "")): p.value for p in acc.points()}


def test_nulls_and_distinct_values_count_once_across_batches() -> None:
    acc = ProfileAccumulator("t")
    acc.add(pl.DataFrame({"email": ["a@x", "b@x", None, "a@x"]}))
    acc.add(pl.DataFrame({"email": ["b@x", "c@x", None, None]}))
    points = _points(acc)
    assert points[("null_rate", "email")] == 3 / 8
    # a, b, c: a per-batch n_unique summed would say 2 + 2 = 4.
    assert points[("distinct_count", "email")] == 3
    assert points[("distinct_rate", "email")] == 3 / 5


def test_distinct_estimate_past_the_sketch_is_close() -> None:
    rng = np.random.default_rng(7)
    values = rng.permutation(200_000)
    acc = ProfileAccumulator("t")
    for chunk in np.array_split(values, 20):
        acc.add(pl.DataFrame({"id": chunk}))
    acc.add(pl.DataFrame({"id": values[:50_000]}))  # repeats add nothing
    profile = acc.profiles["id"]
    assert len(profile.hashes) == DISTINCT_SKETCH
    assert abs(profile.distinct - 200_000) / 200_000 < 0.05


def test_numeric_mean_is_exact_and_quantiles_come_from_a_bounded_sample() -> None:
    values = np.arange(1, 100_001, dtype=np.float64)
    acc = ProfileAccumulator("t")
    for chunk in np.array_split(values, 10):
        acc.add(pl.DataFrame({"amount": chunk}))
    profile = acc.profiles["amount"]
    assert profile.mean == 50_000.5
    assert (profile.minimum, profile.maximum) == (1, 100_000)
    assert len(profile.sample) == RESERVOIR
    assert abs((profile.quantile(0.5) or 0) - 50_000) < 2_000
    assert abs((profile.quantile(0.95) or 0) - 95_000) < 2_000


def test_decimals_are_numeric_and_text_is_not() -> None:
    acc = profile_batch(
        pl.DataFrame(
            {"amount": [Decimal("1.50"), Decimal("2.50"), None], "status": ["a", "b", "c"]}
        ),
        ["amount", "status"],
    )
    points = _points(acc)
    assert points[("mean", "amount")] == 2.0
    assert ("mean", "status") not in points
    assert points[("null_rate", "status")] == 0.0


def test_merged_batch_profiles_equal_one_accumulator() -> None:
    frames = [pl.DataFrame({"n": [i, i + 1, None]}) for i in range(5)]
    whole = ProfileAccumulator("t")
    for frame in frames:
        whole.add(frame)
    merged = profile_batch(frames[0], table_name="t")
    for frame in frames[1:]:
        merged.merge(profile_batch(frame, table_name="t"))
    assert _points(merged) == _points(whole)


def test_only_the_named_columns_are_profiled() -> None:
    acc = ProfileAccumulator("t", columns=["a"])
    acc.add(pl.DataFrame({"a": [1], "b": [2]}))
    assert set(acc.profiles) == {"a"}


def test_cursor_gives_the_newest_value_and_rows_per_hour() -> None:
    base = datetime(2026, 3, 1, 9, 0)
    acc = ProfileAccumulator("t", cursor="updated_at")
    acc.add(pl.DataFrame({"updated_at": [base + timedelta(minutes=m) for m in (5, 50, 70)]}))
    acc.add(pl.DataFrame({"updated_at": [base + timedelta(minutes=65), None]}))
    assert acc.newest_cursor == (base + timedelta(minutes=70)).replace(tzinfo=UTC)
    assert acc.rows_by_hour == {
        base.replace(tzinfo=UTC): 2,
        (base + timedelta(hours=1)).replace(tzinfo=UTC): 2,
    }


def test_zoned_cursor_hours_are_utc() -> None:
    moment = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)
    series = pl.Series("c", [moment]).dt.convert_time_zone("Europe/Berlin")
    acc = ProfileAccumulator("t", cursor="c")
    acc.add(series.to_frame())
    assert acc.rows_by_hour == {datetime(2026, 3, 1, 9, 0, tzinfo=UTC): 1}
    assert acc.newest_cursor == moment


def test_categories_are_counted_exactly_and_only_while_few() -> None:
    acc = ProfileAccumulator("t")
    acc.add(pl.DataFrame({"status": ["paid", "paid", None], "id": ["a", "b", "c"]}))
    acc.add(pl.DataFrame({"status": ["new", "paid", "new"], "id": [str(i) for i in range(60)][:3]}))
    acc.add(pl.DataFrame({"status": ["paid"] * 60, "id": [f"x{i}" for i in range(60)]}))
    samples = {s.column: s for s in acc.samples(datetime.now(UTC), "r")}
    assert samples["status"].counts == {"paid": 63, "new": 2}
    assert samples["status"].nulls == 1 and samples["status"].rows == 66
    assert samples["id"].counts is None  # 66 distinct values: an identifier, not a category


def test_a_numeric_sample_is_uniform_and_bounded() -> None:
    acc = ProfileAccumulator("t")
    for start in range(0, 50_000, 10_000):
        acc.add(pl.DataFrame({"x": np.arange(start, start + 10_000, dtype=np.float64)}))
    (sample,) = acc.samples(datetime.now(UTC), "r")
    assert sample.values is not None and len(sample.values) == 1000
    assert 20_000 < float(np.median(sample.values)) < 30_000  # drawn from every batch
