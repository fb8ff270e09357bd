"""Finding every row that differs between a source table and its warehouse copy.

Both sides checksum their rows inside the database, per key segment; only segments whose
checksums differ are read row by row; a repair then rewrites those rows through the sync's own
merge (`repair.py`). In the order `diff_plan` runs it:

0. **Source keys** (`source_keys.py`): NULL and duplicated keys are counted and named first; rows
   with a NULL key are left out, and the run reports itself incomplete.
1. **Plan** (`plan.py`): the compared columns (both sides' shared columns, or `columns`) and the
   dialect of each side, which writes the canonical text of every value (`pipewarden.dialects`:
   one file per engine). Columns an engine cannot canonicalize in SQL (MariaDB JSON, floats
   across engines) are *Python columns*, canonicalized by the Python reference. A row's hash is
   the first 64 bits of md5 of its canonical text, the same bytes on every engine; when both
   sides are the same engine, `native_hash` lets it use its own type-aware row hash instead
   (PostgreSQL 14+: `hash_record_extended`, which builds no text).
2. **Buckets** (`buckets.py`): boundaries from a random sample of keys on one side (the target
   where only it samples almost for free, as PostgreSQL's `TABLESAMPLE`), about
   `rows_per_bucket` rows each, at most `max_buckets`. Buckets follow row counts, so any key
   shape works (sparse, skewed, text, composite).
3. **Probe**: runs of `probe_run` buckets, one run in every `probe_every`, are compared row by
   row at once (1/`probe_every` of the rows, through the key index). From their difference rate
   the share of buckets that would differ is predicted; above `stream_share` a bucket pass would
   be wasted (nearly every bucket would be narrowed anyway), so the run *streams*: it compares
   `(key, hash)` of all remaining rows in key-range chunks. Tables with Python columns stream.
4. **Bucket pass**: otherwise both sides compute a row count and an order-independent checksum
   (the sum of row hashes modulo 2^64) per bucket, in one grouped scan each, concurrently (two
   threads, two connections). Equal buckets are done: their rows count as compared.
5. **Narrowing** (`narrow.py`, `stream_diff.py`): differing buckets are merged into key spans and
   read in chunks of about `chunk_rows` rows from both sides concurrently; rows are matched by
   key and their hashes compared. Memory holds one chunk plus the differences found, held
   column by column (`diff_list.py`).
6. **Columns** (`columns.py`): for changed rows, per-column hashes name the columns that differ.

Repair (`repair.py`, driven by `run.py`) re-reads the missing and changed rows from the source,
passes them through the table's checks as a sync would, merges them with the dialect's merge
(without its cursor guard: the source wins), deletes the extra rows the source still lacks, and
compares the repaired spans again (`recheck`).

Parameters (`DiffOptions`): `key_range` limits both sides to `LOW <= first key column <= HIGH`;
`columns` compares only these (and the key); `keys_only` compares the key columns alone, the
cheap sweep for hard deletes. Budgets: `max_seconds` and `max_diffs` are checked between steps
and chunks (a single grouped scan is not interrupted); a stopped run says so (`stopped_by`) and
reports `coverage`, the share of rows whose comparison finished. `rows_per_bucket`,
`max_buckets`, `probe_every`, `probe_run`, `stream_share`, `chunk_rows` and `native_hash` tune
steps 1-5 as above.
"""

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar

import sqlalchemy as sa

from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import connect
from pipewarden.reconcile.buckets import BucketChecksum, Buckets, sample_buckets, sliced_checksums
from pipewarden.reconcile.columns import column_hashes, differing_columns, ordered_columns
from pipewarden.reconcile.diff_list import DiffList
from pipewarden.reconcile.keys import Key, key_matcher, parse_key_bound
from pipewarden.reconcile.narrow import Digests, Span, fetch_digests, group_spans
from pipewarden.reconcile.plan import Side, TablePlan, plan_table
from pipewarden.reconcile.row_diff import RowDiff
from pipewarden.reconcile.source_keys import KeyFinding, find_key_problems, key_is_null
from pipewarden.reconcile.stream_diff import StreamComparison

T = TypeVar("T")
#: Changed rows whose columns are named at a time (step 6).
COLUMN_ROWS = 10_000


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
    """Every differing row, and how much of the table was compared.

    `diff_plan` gives each kind as a `DiffList` (held column by column); a list of `RowDiff`
    reads the same."""

    table: str
    mode: str
    missing: Sequence[RowDiff]
    extra: Sequence[RowDiff]
    changed: Sequence[RowDiff]
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
    """Compare a planned table with its copy, in the steps of the module docstring."""
    with _Comparison.connected(plan, options) as run:
        run.find_source_key_problems()
        buckets = run.sample_buckets()
        run.probe(buckets)
        if run.mode == "buckets":
            run.compare_bucket_checksums(buckets)
        run.narrow_differing(buckets)
        run.name_changed_columns()
    return run.result(buckets)


class _Comparison:
    """One `diff_plan` run: both sides' connections, the budget, and what was found so far."""

    def __init__(
        self,
        plan: TablePlan,
        options: DiffOptions,
        conns: dict[str, sa.Connection],
        pool: ThreadPoolExecutor,
    ) -> None:
        self.plan, self.options, self.conns, self.pool = plan, options, conns, pool
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}
        self.budget = _Budget(options.max_seconds, options.max_diffs)
        self.matcher = None if plan.portable_keys else key_matcher(plan.key_kinds)
        self.unsigned = plan.unsigned
        self.where = {side.role: _key_range(side, plan, options.key_range) for side in plan.sides()}
        self.stream = StreamComparison(same_chunk=_same_chunk(plan))
        self.spans: list[Span] = []
        self.problems: list[KeyFinding] = []
        #: "buckets", or "stream" once the probe (or a Python column) says a pass is wasted.
        self.mode = "buckets"
        #: Buckets still to narrow, those the probe compared, and how many checksums differed.
        self.todo: list[int] = []
        self.probed: set[int] = set()
        self.differing = 0
        #: Rows each differing bucket holds (the larger side), for sizing the narrowing chunks.
        self.expected: dict[int, int] = {}
        self.stopped: str | None = None

    @classmethod
    @contextmanager
    def connected(cls, plan: TablePlan, options: DiffOptions) -> Iterator["_Comparison"]:
        with (
            connect(plan.source.engine) as src,
            connect(plan.target.engine) as tgt,
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            yield cls(plan, options, {"source": src, "target": tgt}, pool)

    def both(self, task: Callable[[sa.Connection, Side], T]) -> tuple[T, T]:
        """Run a task on both sides at once, each on its own connection."""
        futures = [self.pool.submit(task, self.conns[s.role], s) for s in self.plan.sides()]
        return futures[0].result(), futures[1].result()

    def lap(self, step: str) -> None:
        """Record the seconds `step` took."""
        self.timings[step] = _lap(self.started, self.timings)

    def find_source_key_problems(self) -> None:
        """Step 0: NULL and duplicated source keys; NULL-key rows are left out."""
        source = self.plan.source
        self.problems = find_key_problems(self.conns["source"], source, self.where["source"])
        if any(p.kind == "null_key" for p in self.problems):
            has_key = sa.not_(key_is_null(source))
            where = self.where["source"]
            self.where["source"] = has_key if where is None else sa.and_(where, has_key)
        self.lap("source_keys")

    def sample_buckets(self) -> Buckets:
        """Step 2: bucket boundaries from a sample of one side's keys."""
        sampler = _sampler(self.plan)
        buckets = sample_buckets(
            self.conns[sampler.role],
            sampler,
            self.options.rows_per_bucket,
            self.options.max_buckets,
            self.where[sampler.role],
        )
        self.todo = list(range(buckets.count))
        self.lap("sample")
        return buckets

    def probe(self, buckets: Buckets) -> None:
        """Step 3: compare a few runs of buckets row by row; stream if most buckets differ."""
        every, run = self.options.probe_every, self.options.probe_run
        if self.plan.python_columns:
            self.mode = "stream"
            return
        if buckets.count < 2 * every * run:
            return
        probe = [b for b in range(buckets.count) if (b // run) % every == every // 2]
        found, compared = self.stream.found, self.stream.rows_compared
        self.stopped = self._narrow(buckets, probe)
        self.probed = set(probe)
        rate = (self.stream.found - found) / max(self.stream.rows_compared - compared, 1)
        if 1 - (1 - rate) ** _rows_per_bucket(buckets) > self.options.stream_share:
            self.mode = "stream"
        self.todo = [b for b in self.todo if b not in self.probed]
        self.lap("probe")

    def compare_bucket_checksums(self, buckets: Buckets) -> None:
        """Step 4: count and checksum every bucket on both sides; keep those that differ."""
        self.stopped = self.stopped or self.budget.stop_reason(self.stream.found)
        if self.stopped is not None:
            return
        # Each side keeps its planner's choice (parallel workers included): measured faster
        # than one core per side, also when both tables share a server.
        sums = self.both(lambda c, s: sliced_checksums(c, s, buckets, self.where[s.role]))
        self.lap("checksums")
        self.todo = _count_equal(sums, self.probed, self.stream, self.expected)
        self.differing = len(self.todo)

    def narrow_differing(self, buckets: Buckets) -> None:
        """Step 5: read the differing (or, streaming, all remaining) buckets row by row."""
        if self.stopped is not None:
            return
        self.stopped = self._narrow(buckets, self.todo)
        if self.mode == "stream":
            self.differing = buckets.count
        self.lap("narrow" if self.mode == "buckets" else "stream")

    def _narrow(self, buckets: Buckets, numbers: list[int]) -> str | None:
        """Compare the rows of these buckets in chunks; the budget's reason if it stopped."""
        per_bucket = _rows_per_bucket(buckets)

        def rows_of(number: int) -> int:
            return self.expected.get(number, per_bucket)

        for group in group_spans(numbers, buckets.span, rows_of, self.options.chunk_rows):
            reason = self.budget.stop_reason(self.stream.found)
            if reason:
                return reason

            def fetch(conn: sa.Connection, side: Side, part: list[Span] = group.spans) -> Digests:
                where = self.where[side.role]
                return fetch_digests(conn, side, part, where, self.matcher, self.unsigned)

            self.stream.add(*self.both(fetch))
            self.spans.extend(group.spans)
        return None

    def name_changed_columns(self) -> None:
        """Step 6: per-column hashes of the changed rows name the columns that differ."""
        changed, plan = self.stream.changed, self.plan
        if not changed or plan.columns == plan.key:
            return
        columns = ordered_columns(plan.source, [c for c in plan.columns if c not in plan.key])
        # A chunk of rows at a time: each row's per-column hashes, on both sides, are some
        # hundreds of bytes; 50,000 rows' worth (`chunk_rows`) set a million-difference run's
        # peak memory.
        step = min(self.options.chunk_rows, COLUMN_ROWS)
        for start in range(0, len(changed), step):
            part = list(changed.rows(start, start + step))
            keys = {
                "source": [d.key for d in part],
                "target": [d.target_key or d.key for d in part],
            }

            def hashes(
                c: sa.Connection, s: Side, k: dict[str, list[Key]] = keys
            ) -> dict[Any, tuple[Key, tuple[int, ...]]]:
                return column_hashes(c, s, columns, k[s.role], self.matcher)

            left, right = self.both(hashes)
            for index, diff in enumerate(part, start):
                match = self._match(diff.key)
                if match in left and match in right:
                    named = differing_columns(
                        columns, left[match][1], right[match][1], self.unsigned
                    )
                    changed.name_columns(index, named)
        self.lap("columns")

    def _match(self, key: Key) -> Any:
        if self.matcher is not None:
            return self.matcher(key)
        return key[0] if len(key) == 1 else key

    def result(self, buckets: Buckets) -> DiffResult:
        """The differences, without duplicated source keys and within `max_diffs`."""
        stream = self.stream
        changed, missing, extra = stream.changed, stream.take_missing(), stream.take_extra()
        duplicated = set().union(*(p.found for p in self.problems if p.kind == "duplicate_key"))
        if duplicated:
            changed = DiffList("changed", (d for d in changed if d.key not in duplicated))
            missing = DiffList("missing", (d for d in missing if d.key not in duplicated))
        limit = self.options.max_diffs
        if limit is not None:
            changed = _first(changed, limit)
            missing = _first(missing, max(0, limit - len(changed)))
            extra = _first(extra, max(0, limit - len(changed) - len(missing)))
        self.timings["total"] = time.perf_counter() - self.started
        stream = self.stream
        return DiffResult(
            table=self.plan.name,
            mode=self.mode,
            missing=missing,
            extra=extra,
            changed=changed,
            rows_compared=stream.rows_compared,
            rows_estimated=max(buckets.estimated_rows, stream.source_rows, stream.target_rows),
            source_rows=stream.source_rows,
            target_rows=stream.target_rows,
            buckets=buckets.count,
            buckets_differing=self.differing,
            complete=self.stopped is None and not self.problems,
            stopped_by=self.stopped,
            columns=self.plan.columns,
            timings=self.timings,
            spans=self.spans,
            key_problems=self.problems,
        )


def recheck(plan: TablePlan, spans: list[Span]) -> StreamComparison:
    """Compare the given key spans again, row by row (after a repair)."""
    matcher = None if plan.portable_keys else key_matcher(plan.key_kinds)
    unsigned = plan.unsigned
    stream = StreamComparison(same_chunk=_same_chunk(plan))
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


def _same_chunk(plan: TablePlan) -> bool:
    """Every engine orders integer keys alike, so both sides read a key in the same chunk: a
    row unmatched in its chunk is a difference at once (`stream_diff`)."""
    return all(kind.kind == "integer" for kind in plan.key_kinds)


def _first(found: DiffList, count: int) -> DiffList:
    """The first `count` differences (all of them, not copied, when there are no more)."""
    return found if len(found) <= count else found[:count]


def _rows_per_bucket(buckets: Buckets) -> int:
    return max(1, buckets.estimated_rows // buckets.count)


def _sampler(plan: TablePlan) -> Side:
    """The source, unless only the target samples almost for free (TABLESAMPLE)."""
    if plan.target.dialect.cheap_sample and not plan.source.dialect.cheap_sample:
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
