"""Work per table, shared with forked processes: the detector is Python and numpy, one core
per process, and a check run of 200 tables spends most of its time there.

The helpers are forked after everything was read, so they find the histories in memory (copy on
write) and send back only their results; they touch no database connection and leave with
`os._exit`, as multiprocessing's forked workers do. Forking is only done where it is safe and
worth it: a process with no other thread (a fork copies no thread, and a lock another thread
held stays locked in the child; Prefect runs flows in threads, so flows score in one process),
two or more usable cores, and enough tables to repay the fork.
"""

import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

T = TypeVar("T")

#: Fewer tables than this are scored in this process: a fork and its results would cost more.
MIN_TABLES = 32

_work: Callable[[str], Any] | None = None


def map_tables(names: Sequence[str], work: Callable[[str], T], shared: bool = True) -> list[T]:
    """`[work(name) for name in names]`, in order, with forked helpers where safe (`shared`)."""
    helpers = _helpers(len(names)) if shared else 0
    if helpers == 0:
        return [work(name) for name in names]
    global _work
    shares = [list(names[i :: helpers + 1]) for i in range(helpers + 1)]
    _work = work
    try:
        with multiprocessing.get_context("fork").Pool(helpers) as pool:  # forks here
            theirs = pool.map_async(_share, shares[1:])
            parts = [[work(name) for name in shares[0]], *theirs.get()]
    finally:
        _work = None
    # Interleaved shares (every k-th table) balance tables of different history lengths.
    out: list[Any] = [None] * len(names)
    for i, part in enumerate(parts):
        out[i :: helpers + 1] = part
    return out


def _share(names: list[str]) -> list[Any]:
    assert _work is not None, "forked without work"
    return [_work(name) for name in names]


def _helpers(tables: int) -> int:
    """Processes to fork: one per usable core beyond this one, at most three; none where
    forking is unsafe (another thread, or not Linux) or would not pay."""
    if tables < MIN_TABLES or threading.active_count() > 1 or not sys.platform.startswith("linux"):
        return 0
    return max(0, min(len(os.sched_getaffinity(0)), 4) - 1)
