"""Finding every row that differs between a source table and its warehouse copy.

The algorithm, in the order it runs:

1. **Plan** (`plan.py`): the compared columns (both sides' shared columns, or `columns`) and, per
   column, the canonical SQL fragment of each side's dialect (`canonical/`). Columns an engine
   cannot canonicalize in SQL (MariaDB JSON, floats across engines) are *Python columns*.
   Row hashes are md5 of the canonical text (identical bytes on every engine); when both sides
   are PostgreSQL 14+, `native_hash` uses its type-aware `hash_record_extended` instead, which
   builds no text and costs about a fifth.
2. **Buckets** (`buckets.py`): boundaries from a random sample of keys on one side (PostgreSQL's
   `TABLESAMPLE` where a side is PostgreSQL), about `rows_per_bucket` rows each, at most
   `max_buckets`. Buckets follow row counts, so any key shape works.
3. **Probe**: runs of `probe_run` buckets, one run in every `probe_every`, are compared row by
   row at once (about 1.5% of the rows, through the key index). From its difference rate the
   share of buckets that would differ is predicted; above `stream_share` the bucket pass would
   be wasted (nearly every bucket would be narrowed anyway), so the run *streams*: it compares
   `(key, hash)` of all remaining rows in key-range chunks. Tables with Python columns stream.
4. **Bucket pass**: otherwise both sides compute count and checksum per bucket in one grouped
   scan each, concurrently (two threads, two connections). Equal buckets are done.
5. **Narrowing** (`narrow.py`, `stream_diff.py`): differing buckets are merged into key spans and
   read in chunks of about `chunk_rows` rows from both sides concurrently; rows are matched by key
   and their hashes compared. Memory holds one chunk plus the differences found.
6. **Columns** (`columns.py`): for changed rows, per-column hashes name the columns that differ.

Budgets: `max_seconds` and `max_diffs` are checked between steps and chunks (a single grouped
scan is not interrupted); a stopped run says so (`stopped_by`) and reports `coverage`, the share
of rows whose comparison finished.
`keys_only` compares the key columns alone: the cheap sweep for hard deletes.
"""

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import connect
from pipewarden.reconcile.buckets import BucketChecksum, Buckets, sample_buckets, sliced_checksums
from pipewarden.reconcile.columns import column_hashes, differing_columns, ordered_columns
from pipewarden.reconcile.keys import key_matcher, parse_key_bound
from pipewarden.reconcile.narrow import Digests, Span, fetch_digests, group_spans
from pipewarden.reconcile.plan import Side, TablePlan, plan_table
from pipewarden.reconcile.source_keys import KeyFinding, find_key_problems, key_is_null
from pipewarden.reconcile.stream_diff import RowDiff, StreamComparison

T = TypeVar("T")
U = TypeVar("U")


@dataclass
class DiffOptions:
    """How a comparison runs; every field is explained in the module docstring."""

    key_range: tuple[str | None, str | None] | None = None
    columns: list[str] | None = None
    keys_only: bool = False
    max_seconds: float | None = None
    max_diffs: int | None = None
    rows_per_bucket: int = 64
    max_buckets: int = 16384
    probe_every: int = 64
    probe_run: int = 16
    stream_share: float = 0.3
    chunk_rows: int = 50_000
    #: Same engine on both sides: hash with its native, type-aware function instead of md5.
    native_hash: bool = True

    def __post_init__(self) -> None:
        """Refuse settings that would compare nothing, or less than they seem to, yet report
        success (a negative budget, an empty bucket): the CLI and the flows both build these."""
        problems = [
            f"{name} must be {rule}, got {value!r}"
            for name, value, rule, ok in (
                ("max_seconds", self.max_seconds, "0 or more", lambda v: v is None or v >= 0),
                ("max_diffs", self.max_diffs, "1 or more", lambda v: v is None or v >= 1),
                ("rows_per_bucket", self.rows_per_bucket, "1 or more", lambda v: v >= 1),
                ("max_buckets", self.max_buckets, "1 or more", lambda v: v >= 1),
                ("probe_every", self.probe_every, "1 or more", lambda v: v >= 1),
                ("probe_run", self.probe_run, "1 or more", lambda v: v >= 1),
                ("stream_share", self.stream_share, "between 0 and 1", lambda v: 0 <= v <= 1),
                ("chunk_rows", self.chunk_rows, "1 or more", lambda v: v >= 1),
            )
            if not ok(value)
        ]
        if problems:
            raise ValueError("reconcile options: " + "; ".join(problems))


@dataclass
class DiffResult:
    """Every differing row, and how much of the table was compared."""

    table: str
    mode: str
    missing: list[RowDiff]
    extra: list[RowDiff]
    changed: list[RowDiff]
    rows_compared: int
    rows_estimated: int
    source_rows: int
    target_rows: int
    buckets: int
    buckets_differing: int
    complete: bool
    stopped_by: str | None
    columns: list[str]
    timings: dict[str, float] = field(default_factory=dict)
    spans: list[Span] = field(default_factory=list)
    #: Source keys the rows cannot be compared by (NULL, duplicated): the run is not complete.
    key_problems: list[KeyFinding] = field(default_factory=list)

    @property
    def coverage(self) -> float:
        if self.complete:
            return 1.0
        return min(1.0, self.rows_compared / max(self.rows_estimated, 1))

    @property
    def differences(self) -> int:
        return len(self.missing) + len(self.extra) + len(self.changed)


class _Budget:
    def __init__(self, max_seconds: float | None, max_diffs: int | None) -> None:
        self.deadline = None if max_seconds is None else time.monotonic() + max_seconds
        self.max_diffs = max_diffs

    def stop_reason(self, found: int) -> str | None:
        if self.max_diffs is not None and found >= self.max_diffs:
            return "max_diffs"
        if self.deadline is not None and time.monotonic() >= self.deadline:
            return "max_seconds"
        return None


def diff_table(
    config: PipewardenConfig, name: str, options: DiffOptions | None = None
) -> DiffResult:
    """Compare one configured table with its warehouse copy."""
    options = options or DiffOptions()
    plan = plan_table(config, name, options.columns, options.keys_only, options.native_hash)
    return diff_plan(plan, options)


def diff_plan(plan: TablePlan, options: DiffOptions) -> DiffResult:
    started = time.perf_counter()
    timings: dict[str, float] = {}
    budget = _Budget(options.max_seconds, options.max_diffs)
    matcher = None if plan.portable_keys else key_matcher(plan.key_kinds)
    unsigned = plan.source.canonical.name != plan.target.canonical.name
    where = {side.role: _key_range(side, plan, options.key_range) for side in plan.sides()}
    stream = StreamComparison()
    spans: list[Span] = []
    stopped: str | None = None
    with (
        connect(plan.source.engine) as src,
        connect(plan.target.engine) as tgt,
        ThreadPoolExecutor(max_workers=2) as pool,
    ):
        conns = {"source": src, "target": tgt}
        problems = find_key_problems(src, plan.source, where["source"])
        if any(p.kind == "null_key" for p in problems):
            has_key = sa.not_(key_is_null(plan.source))
            where["source"] = (
                has_key if where["source"] is None else sa.and_(where["source"], has_key)
            )
        timings["source_keys"] = _lap(started)

        def both(task: Callable[[sa.Connection, Side], T]) -> tuple[T, T]:
            futures = [pool.submit(task, conns[s.role], s) for s in plan.sides()]
            return futures[0].result(), futures[1].result()

        sampler = _sampler(plan)
        buckets = sample_buckets(
            conns[sampler.role],
            sampler,
            options.rows_per_bucket,
            options.max_buckets,
            where[sampler.role],
        )
        timings["sample"] = _lap(started, timings)
        per_bucket = max(1, buckets.estimated_rows // buckets.count)
        expected: dict[int, int] = {}

        def rows_of(number: int) -> int:
            return expected.get(number, per_bucket)

        def narrow(numbers: list[int]) -> str | None:
            for group in group_spans(numbers, buckets.span, rows_of, options.chunk_rows):
                reason = budget.stop_reason(stream.found)
                if reason:
                    return reason

                def fetch(
                    conn: sa.Connection, side: Side, part: list[Span] = group.spans
                ) -> Digests:
                    return fetch_digests(conn, side, part, where[side.role], matcher, unsigned)

                stream.add(*both(fetch))
                spans.extend(group.spans)
            return None

        mode, todo, probed = "buckets", list(range(buckets.count)), set()
        differing = 0
        if plan.python_columns:
            mode = "stream"
        elif buckets.count >= 2 * options.probe_every * options.probe_run:
            probe = [
                b
                for b in range(buckets.count)
                if (b // options.probe_run) % options.probe_every == options.probe_every // 2
            ]
            before = (stream.found, stream.rows_compared)
            stopped = narrow(probe)
            probed = set(probe)
            rate = (stream.found - before[0]) / max(stream.rows_compared - before[1], 1)
            if 1 - (1 - rate) ** per_bucket > options.stream_share:
                mode = "stream"
            todo = [b for b in todo if b not in probed]
            timings["probe"] = _lap(started, timings)
        if mode == "buckets" and stopped is None:
            stopped = budget.stop_reason(stream.found)
            if stopped is None:
                # Each side keeps its planner's choice (parallel workers included): measured
                # faster than one core per side, also when both tables share a server.
                sums = both(lambda c, s: sliced_checksums(c, s, buckets, where[s.role]))
                timings["checksums"] = _lap(started, timings)
                todo = _count_equal(sums, probed, stream, expected)
                differing = len(todo)
        if stopped is None:
            stopped = narrow(todo)
            differing = differing if mode == "buckets" else buckets.count
            timings["narrow" if mode == "buckets" else "stream"] = _lap(started, timings)
        changed = stream.changed
        if changed and plan.columns != plan.key:
            _name_columns(plan, changed, both, matcher, unsigned)
            timings["columns"] = _lap(started, timings)
    missing, extra = stream.missing, stream.extra
    duplicated = set().union(*(p.found for p in problems if p.kind == "duplicate_key"))
    if duplicated:
        changed = [d for d in changed if d.key not in duplicated]
        missing = [d for d in missing if d.key not in duplicated]
    if options.max_diffs is not None:
        changed = changed[: options.max_diffs]
        missing = missing[: max(0, options.max_diffs - len(changed))]
        extra = extra[: max(0, options.max_diffs - len(changed) - len(missing))]
    timings["total"] = time.perf_counter() - started
    estimated = max(buckets.estimated_rows, stream.source_rows, stream.target_rows)
    return DiffResult(
        table=plan.name,
        mode=mode,
        missing=missing,
        extra=extra,
        changed=changed,
        rows_compared=stream.rows_compared,
        rows_estimated=estimated,
        source_rows=stream.source_rows,
        target_rows=stream.target_rows,
        buckets=buckets.count,
        buckets_differing=differing,
        complete=stopped is None and not problems,
        stopped_by=stopped,
        columns=plan.columns,
        timings=timings,
        spans=spans,
        key_problems=problems,
    )


def recheck(plan: TablePlan, spans: list[Span]) -> StreamComparison:
    """Compare the given key spans again, row by row (after a repair)."""
    matcher = None if plan.portable_keys else key_matcher(plan.key_kinds)
    unsigned = plan.source.canonical.name != plan.target.canonical.name
    stream = StreamComparison()
    with connect(plan.source.engine) as src, connect(plan.target.engine) as tgt:
        for start in range(0, len(spans), 400):
            chunk = spans[start : start + 400]
            stream.add(
                fetch_digests(src, plan.source, chunk, None, matcher, unsigned),
                fetch_digests(tgt, plan.target, chunk, None, matcher, unsigned),
            )
    return stream


def _count_equal(
    sums: tuple[dict[int, BucketChecksum], dict[int, BucketChecksum]],
    probed: set[int],
    stream: StreamComparison,
    expected: dict[int, int],
) -> list[int]:
    """Count the rows of equal buckets as compared; return the buckets that differ."""
    source, target = sums
    differing = []
    for number in sorted(source.keys() | target.keys()):
        if number in probed:
            continue
        left, right = source.get(number), target.get(number)
        if left == right and left is not None:
            stream.rows_compared += left.rows
            stream.source_rows += left.rows
            stream.target_rows += left.rows
        else:
            differing.append(number)
            expected[number] = max(left.rows if left else 0, right.rows if right else 0)
    return differing


def _name_columns(
    plan: TablePlan,
    changed: list[RowDiff],
    both: Callable[[Callable[[sa.Connection, Side], Any]], tuple[Any, Any]],
    matcher: Callable[[Any], Any] | None,
    unsigned: bool,
) -> None:
    columns = ordered_columns(plan.source, [c for c in plan.columns if c not in plan.key])
    keys = {
        "source": [d.key for d in changed],
        "target": [d.target_key or d.key for d in changed],
    }
    left, right = both(lambda c, s: column_hashes(c, s, columns, keys[s.role], matcher))
    for diff in changed:
        match = matcher(diff.key) if matcher else (diff.key[0] if len(diff.key) == 1 else diff.key)
        if match in left and match in right:
            diff.columns = differing_columns(columns, left[match][1], right[match][1], unsigned)


def _sampler(plan: TablePlan) -> Side:
    """PostgreSQL samples keys almost for free (TABLESAMPLE); otherwise sample the source."""
    if plan.source.engine.dialect.name != "postgresql" and (
        plan.target.engine.dialect.name == "postgresql"
    ):
        return plan.target
    return plan.source


def _key_range(side: Side, plan: TablePlan, key_range: tuple[str | None, str | None] | None) -> Any:
    """`LOW <= first key column <= HIGH` (either end may be open)."""
    if not key_range:
        return None
    column, kind = side.key_columns[0], plan.key_kinds[0]
    low, high = (
        None if text is None or text == "" else parse_key_bound(text, kind, plan.key[0])
        for text in key_range
    )
    if low is not None and high is not None and _above(low, high):
        raise ValueError(
            f"table {plan.name}: --key-range {key_range[0]}:{key_range[1]} is empty "
            f"(its low end is above its high end on key column {plan.key[0]!r})"
        )
    parts = []
    if low is not None:
        parts.append(column >= low)
    if high is not None:
        parts.append(column <= high)
    return sa.and_(*parts) if parts else None


def _above(low: Any, high: Any) -> bool:
    try:
        return bool(low > high)
    except TypeError:  # one end with a time zone, the other without
        raise ValueError(
            f"--key-range {low}:{high}: give both ends with a time zone, or neither"
        ) from None


def _lap(started: float, timings: dict[str, float] | None = None) -> float:
    """Seconds since the last recorded step."""
    elapsed = time.perf_counter() - started
    return elapsed - sum((timings or {}).values())


def describe(result: DiffResult) -> str:
    """One line for logs."""
    state = "complete" if result.complete else f"stopped by {result.stopped_by}"
    return (
        f"{result.table}: {len(result.missing)} missing, {len(result.extra)} extra, "
        f"{len(result.changed)} changed; {result.rows_compared} rows compared "
        f"({result.coverage:.1%}, {state}, {result.mode})"
    )


__all__ = ["Buckets", "DiffOptions", "DiffResult", "diff_plan", "diff_table", "recheck"]
