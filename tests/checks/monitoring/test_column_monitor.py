"""Column monitors over recorded samples, through run_checks, on PostgreSQL and SQLite."""

import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

from pipewarden.checks.monitoring.column_monitor import (
    ColumnMonitorSettings,
    column_results,
    null_rate_band,
)
from pipewarden.checks.monitoring.run import run_checks
from pipewarden.config.load import parse_config
from pipewarden.db.engines import cached_engine
from pipewarden.records.column_samples import (
    ColumnSample,
    column_samples,
    read_samples,
    sample_values,
    write_samples,
)
from pipewarden.records.metrics import CheckResult, check_results, write_check_results
from pipewarden.records.migrate import ensure_tables
from tests.checks.monitoring.support import reference_column_results

NOW = datetime(2026, 3, 2, 15, 20, tzinfo=UTC)


def _config(warehouse_url: str) -> Any:
    table = {"source": "shop", "primary_key": ["id"], "cursor": "updated_at"}
    return parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
            "tables": {"orders": table},
        },
        Path("t.yaml"),
    )


def _run(i: int, **columns: dict[str, Any]) -> list[ColumnSample]:
    """One run's samples, `i` hours before NOW; each column: rows, nulls, values or counts."""
    at = NOW - timedelta(hours=i, minutes=10)
    return [ColumnSample(at, "orders", f"run-{i}", name, **spec) for name, spec in columns.items()]


def _checks(warehouse_url: str, runs: list[list[ColumnSample]]) -> dict[str, Any]:
    config = _config(warehouse_url)
    engine = cached_engine(config.warehouse.url)
    ensure_tables(engine)
    with engine.begin() as conn:
        write_samples(conn, [s for run in runs for s in run])
    results = run_checks(config, now=NOW)
    return {r.check: r for r in results if r.check.startswith(("drift:", "null_rate:"))}


def _numbers(rng: np.random.Generator, mean: float, n: int = 500) -> dict[str, Any]:
    return {"rows": n, "nulls": 0, "values": rng.normal(mean, 10, n)}


def test_a_real_shift_is_caught_and_recorded_with_its_reasons(warehouse_url: str) -> None:
    rng = np.random.default_rng(1)
    runs = [_run(0, amount=_numbers(rng, 130), id=_numbers(rng, 5000))]
    runs += [_run(i, amount=_numbers(rng, 100), id=_numbers(rng, 10 * i)) for i in range(1, 11)]
    results = _checks(warehouse_url, runs)

    drift = results["drift:amount"]
    assert drift.status == "anomaly"
    assert drift.observed is not None and drift.observed > 0.5  # KS D
    assert (drift.expected_low, drift.expected_high) == (0.0, 0.1)
    assert drift.score is not None and drift.score < 1e-10  # the BH q-value
    assert drift.method is not None and "ks_2samp" in drift.method and "BH" in drift.method
    assert drift.history_size == 5000 and "10 earlier runs" in (drift.reason or "")
    assert drift.observed_at == NOW - timedelta(minutes=10)
    assert results["null_rate:amount"].status == "ok"
    assert "drift:id" not in results  # the key moves by construction

    with cached_engine(warehouse_url).connect() as conn:
        row = conn.execute(
            sa.select(check_results).where(check_results.c.check == "drift:amount")
        ).one()
    assert row.status == "anomaly" and row.history_size == 5000
    assert row.observed == drift.observed and row.score == drift.score


def test_a_trivial_shift_of_categories_at_large_n_is_ignored(warehouse_url: str) -> None:
    usual = {"rows": 100_000, "nulls": 0, "counts": {"email": 60_000, "sms": 40_000}}
    nudged = {"rows": 100_000, "nulls": 0, "counts": {"email": 60_800, "sms": 39_200}}
    moved = {"rows": 100_000, "nulls": 0, "counts": {"email": 30_000, "push": 70_000}}
    runs = [_run(0, channel=nudged, other=moved)]
    runs += [_run(i, channel=usual, other=usual) for i in range(1, 6)]
    results = _checks(warehouse_url, runs)
    channel = results["drift:channel"]
    assert channel.status == "ok" and "stable" in (channel.reason or "")
    assert channel.score is not None and channel.score < 1e-4  # "significant", and tiny
    assert results["drift:other"].status == "anomaly"


def test_null_rate_floors(warehouse_url: str) -> None:
    """0% -> 0.5% stays quiet (Elementary's false alarm); 0% -> 40% is caught."""
    never = {"rows": 20_000, "nulls": 0}
    runs = [_run(0, email={"rows": 20_000, "nulls": 100}, phone={"rows": 20_000, "nulls": 8_000})]
    runs += [_run(i, email=never, phone=never) for i in range(1, 5)]
    results = _checks(warehouse_url, runs)
    email, phone = results["null_rate:email"], results["null_rate:phone"]
    assert email.status == "ok" and email.observed == 0.005
    assert email.score is not None and email.score < 1e-10  # significant, and below the floors
    assert phone.status == "anomaly" and phone.observed == 0.4
    assert (phone.expected_low, phone.expected_high) == null_rate_band(0.0, ColumnMonitorSettings())
    assert phone.history_size == 80_000 and "0.0%" in (phone.reason or "")


def _marginal(**others: dict[str, Any]) -> list[list[ColumnSample]]:
    """3 nulls in 30 rows after none in 90: a large change, on little evidence."""
    runs = [_run(0, note={"rows": 30, "nulls": 3}, **others)]
    return runs + [_run(i, note={"rows": 30, "nulls": 0}, **others) for i in range(1, 4)]


def test_a_marginal_change_alone_is_significant(warehouse_url: str) -> None:
    note = _checks(warehouse_url, _marginal())["null_rate:note"]
    assert note.status == "anomaly" and note.score is not None and note.score < 0.01


def test_benjamini_hochberg_spans_every_monitor_of_the_run(warehouse_url: str) -> None:
    """The same change among 60 more monitors: its q-value is no longer below 0.05."""
    stable = {f"c{k}": {"rows": 30, "nulls": 0} for k in range(60)}
    note = _checks(warehouse_url, _marginal(**stable))["null_rate:note"]
    assert note.status == "ok" and "not significant" in (note.reason or "")
    assert note.score is not None and note.score > 0.05


def test_small_runs_are_pooled_and_too_little_history_waits(warehouse_url: str) -> None:
    rng = np.random.default_rng(2)
    runs = [_run(i, amount=_numbers(rng, 100, n=12)) for i in range(0, 3)]
    results = _checks(warehouse_url, runs)
    # 36 rows need all three runs to make a latest batch: nothing is left to compare with.
    assert results["drift:amount"].status == "insufficient_history"
    assert "0 earlier runs" in (results["drift:amount"].reason or "")


def test_samples_beyond_the_kept_runs_are_dropped(warehouse_url: str) -> None:
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    with engine.begin() as conn:
        for i in range(5, -1, -1):
            write_samples(conn, _run(i, amount={"rows": 1, "nulls": 0}), keep_runs=3)
        kept = read_samples(conn, ["orders"])["orders"]
    assert [s.run_id for s in kept] == ["run-0", "run-1", "run-2"]


def _history(rng: np.random.Generator) -> list[ColumnSample]:
    """Four tables whose newest runs take every path of the monitors: thinned references, KS
    with ties and with the exact p-value, Anderson-Darling, categories, null rates, pooled
    small runs, a column too young to judge and one that changed from numbers to counts."""

    def run(table: str, i: int, **columns: dict[str, Any]) -> list[ColumnSample]:
        at = NOW - timedelta(hours=i, minutes=10)
        return [ColumnSample(at, table, f"{table}-{i}", c, **spec) for c, spec in columns.items()]

    def counts(n: int, shares: dict[str, float]) -> dict[str, Any]:
        picks = rng.multinomial(n, list(shares.values()))
        return {"rows": n, "nulls": 0, "counts": dict(zip(shares, picks.tolist(), strict=True))}

    def numbers(values: np.ndarray, nulls: int = 0) -> dict[str, Any]:
        return {"rows": len(values) + nulls, "nulls": nulls, "values": values}

    out: list[ColumnSample] = []
    for i in range(12):
        out += run(
            "shifted",
            i,
            id=numbers(np.arange(1000.0) + 1000 * i),
            amount=numbers(rng.gamma(2.0, 25.0 * (1.3 if i == 0 else 1.0), 1000), nulls=3),
            latency=numbers(rng.normal(100, 10, 1000)),
            items=numbers(rng.integers(0, 10 if i == 0 else 8, 1000).astype(float)),
            channel=counts(1000, {"email": 0.5, "sms": 0.3, "push": 0.2}),
            status=counts(1000, {"paid": 0.3, "new": 0.7} if i == 0 else {"paid": 0.7, "new": 0.3}),
            email={"rows": 1000, "nulls": 400 if i == 0 else int(rng.integers(0, 3))},
        )
    for i in range(8):
        shift = 0.8 if i < 3 else 0.0
        out += run(
            "pooled",
            i,
            amount=numbers(rng.normal(shift, 1, 12)),
            kind=counts(12, {"a": 0.5, "b": 0.5}),
        )
    for i in range(6):
        young = {"discount": numbers(rng.normal(5, 1, 150))} if i < 2 else {}
        out += run("young", i, amount=numbers(rng.normal(0, 1, 150)), **young)
    for i in range(5):
        price = (
            counts(200, {"9.99": 0.5, "19.99": 0.5}) if i < 2 else numbers(rng.normal(10, 1, 200))
        )
        out += run("changed_kind", i, price=price)
    return out


def _compress_runs(conn: sa.Connection, run_ids: list[str]) -> None:
    """Store these runs' samples as before the format byte: zlib over the float32 bytes."""
    c = column_samples.c
    stored = conn.execute(
        sa.select(c.id, c.sample).where(c.run_id.in_(run_ids), c.sample.is_not(None))
    ).all()
    assert stored
    for row_id, blob in stored:
        compressed = zlib.compress(bytes(blob[1:]))
        conn.execute(column_samples.update().where(c.id == row_id).values(sample=compressed))


def test_verdicts_match_the_plain_reference(warehouse_url: str) -> None:
    """column_results agrees with scipy's tests over decoded samples: the same statuses and
    reasons, the same effects and q-values up to the last digits of chi-square's p-value."""
    names = ["shifted", "pooled", "young", "changed_kind"]
    table = {"source": "shop", "primary_key": ["id"], "cursor": "updated_at"}
    config = parse_config(
        {
            "warehouse": {"url": warehouse_url},
            "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
            "tables": {name: table for name in names},
        },
        Path("t.yaml"),
    )
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    with engine.begin() as conn:
        write_samples(conn, _history(np.random.default_rng(11)))
        # Old rows among new ones: a reference of both formats, a latest batch of both.
        _compress_runs(conn, [f"shifted-{i}" for i in range(6, 12)] + ["pooled-1"])

    fast = column_results(engine, config, names, NOW, "run")
    plain = reference_column_results(engine, config, names, NOW, "run")

    def key(r: CheckResult) -> tuple[str, str]:
        return (r.table_name, r.check)

    assert sorted(map(key, fast)) == sorted(map(key, plain))
    for f, p in zip(sorted(fast, key=key), sorted(plain, key=key), strict=True):
        assert (f.status, f.method, f.reason, f.history_size) == (
            p.status,
            p.method,
            p.reason,
            p.history_size,
        ), key(f)
        assert (f.observed_at, f.expected_low, f.expected_high) == (
            p.observed_at,
            p.expected_low,
            p.expected_high,
        )
        assert _close(f.observed, p.observed, 1e-12) and _close(f.score, p.score, 1e-9), key(f)

    verdicts = {key(r): r for r in fast}
    assert verdicts["shifted", "drift:amount"].status == "anomaly"
    assert "anderson_ksamp" in (verdicts["shifted", "drift:amount"].method or "")
    assert verdicts["shifted", "drift:items"].status == "anomaly"  # ties
    assert verdicts["shifted", "drift:latency"].status == "ok"
    assert verdicts["shifted", "drift:status"].status == "anomaly"
    assert verdicts["shifted", "null_rate:email"].status == "anomaly"
    assert verdicts["shifted", "drift:amount"].history_size == 5000  # thinned
    assert verdicts["pooled", "drift:amount"].history_size == 60  # exact KS: 36 against 60
    assert verdicts["young", "drift:discount"].status == "insufficient_history"
    assert ("changed_kind", "drift:price") not in verdicts
    assert ("shifted", "drift:id") not in verdicts


def _close(a: float | None, b: float | None, rel: float) -> bool:
    return a == b if a is None or b is None else a == pytest.approx(b, rel=rel)


def test_compressed_samples_of_earlier_versions_still_read(warehouse_url: str) -> None:
    engine = cached_engine(warehouse_url)
    ensure_tables(engine)
    values = np.random.default_rng(3).normal(50, 10, 1000)
    with engine.begin() as conn:
        for i in range(3):
            write_samples(conn, _run(i, amount={"rows": 1000, "nulls": 0, "values": values + i}))
        _compress_runs(conn, ["run-1"])
        runs = read_samples(conn, ["orders"])["orders"]
        blobs = conn.execute(
            sa.select(column_samples.c.sample).order_by(column_samples.c.measured_at.desc())
        ).scalars()
        pooled = sample_values(list(blobs))
    as_stored = [(values + i).astype(np.float32).astype(np.float64) for i in range(3)]
    for sample, expected in zip(runs, as_stored, strict=True):
        assert sample.values is not None and np.array_equal(sample.values, expected)
    assert np.array_equal(pooled, np.concatenate(as_stored))


def test_flagged_runs_stay_out_of_the_reference_until_the_change_is_the_new_normal(
    warehouse_url: str,
) -> None:
    """Nulls jump to 40% and stay: each run is judged against the runs before the incident,
    until the incident fills a whole reference window; then it is the new normal."""
    config = _config(warehouse_url)
    engine = cached_engine(config.warehouse.url)
    ensure_tables(engine)
    settings = ColumnMonitorSettings(reference_runs=4, min_reference_runs=3)
    clean = {"rows": 500, "nulls": 0, "values": np.arange(500.0)}
    broken = {"rows": 500, "nulls": 200, "values": np.arange(300.0)}
    with engine.begin() as conn:
        write_samples(conn, [s for i in range(20, 14, -1) for s in _run(i, email=clean)])
    verdicts = []
    for i in range(14, 8, -1):  # six hourly runs with 40% nulls, oldest first
        with engine.begin() as conn:
            write_samples(conn, _run(i, email=broken))
        now = NOW - timedelta(hours=i)
        results = column_results(engine, config, ["orders"], now, f"check-{i}", settings)
        with engine.begin() as conn:
            write_check_results(conn, results)
        verdicts.append(next(r for r in results if r.check == "null_rate:email"))
    assert [v.status for v in verdicts] == ["anomaly"] * 4 + ["ok"] * 2
    # Judged against the clean runs, not against a reference the incident had leaked into.
    assert all("vs 0.0% over 4 earlier runs" in (v.reason or "") for v in verdicts[:4])
    assert verdicts[3].expected_high == null_rate_band(0.0, settings)[1]
    assert "vs 40.0% over 4 earlier runs" in (verdicts[4].reason or "")
