"""Work per table, shared with helper processes: the detector is Python and numpy, one core
per process, and a check run spends most of its time there.

One helper per usable core beyond this one (at most three), and only for enough tables to repay
it. Two kinds:

* Forked, where this process has no other thread (the command line). They are forked after
  everything was read, so they find the work in memory (copy on write) and send back only their
  results; they touch no database connection and leave with `os._exit`, as multiprocessing's
  forked workers do.
* Spawned, where it has (Prefect runs flows in threads; a fork copies no thread, and a lock
  another thread held stays locked in the child): fresh interpreters (`monitoring.spawned`),
  started before the caller reads, so their imports overlap the reads. Each is sent its share
  of the work pickled (`Shareable.share`: only what its tables need) and sends back its results.
  A helper that dies, or has not answered `HELPER_WAIT` after this process finished its own
  share (or twice as long as that share took, if longer), fails the check run with its reason,
  and none is left running.

Tables are shared interleaved (every k-th table), which balances tables of different history
lengths, and the results come back in the order of the names.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, TypeVar, runtime_checkable

from pipewarden.checks.monitoring.spawned import SpawnedHelper

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)

#: Fewer tables than this are scored in this process: a helper and its results would cost more.
MIN_TABLES = 32
#: Seconds a spawned helper may take beyond this process's own share (at least).
HELPER_WAIT = 120.0

_work: Callable[[str], Any] | None = None


@runtime_checkable
class Shareable(Protocol[T_co]):
    """Work per table that can be sent to a spawned helper: picklable, and able to leave out
    what other tables need."""

    def __call__(self, name: str) -> T_co: ...

    def share(self, names: Sequence[str]) -> Shareable[T_co]: ...


def map_tables(names: Sequence[str], work: Callable[[str], T], shared: bool = True) -> list[T]:
    """`[work(name) for name in names]`, in order, with helpers where safe (`shared`)."""
    with table_helpers(len(names), shared) as helpers:
        return helpers.map(names, work)


@contextmanager
def table_helpers(tables: int, shared: bool = True) -> Iterator[TableHelpers]:
    """Helpers for a map over `tables` tables; spawned ones start now. None is left running."""
    helpers = TableHelpers(_helpers(tables) if shared else 0)
    try:
        yield helpers
    finally:
        helpers.close()


class TableHelpers:
    """The helpers of one map: forked at `map`, or spawned when made (see the module)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.spawned: list[SpawnedHelper] = []
        if count and not _forkable():
            self.spawned = [SpawnedHelper() for _ in range(count)]

    def map(self, names: Sequence[str], work: Callable[[str], T]) -> list[T]:
        """`[work(name) for name in names]`, in order."""
        shares = [list(names[i :: self.count + 1]) for i in range(self.count + 1)]
        if self.count and not self.spawned and _forkable():
            parts = _forked(shares, work)
        elif self.spawned and isinstance(work, Shareable):
            parts = _spawned(shares, work, self.spawned)
        else:
            return [work(name) for name in names]
        out: list[Any] = [None] * len(names)
        for i, part in enumerate(parts):
            out[i :: self.count + 1] = part
        return out

    def close(self) -> None:
        for helper in self.spawned:
            helper.stop()


def _forked(shares: list[list[str]], work: Callable[[str], T]) -> list[list[T]]:
    global _work
    _work = work
    try:
        with multiprocessing.get_context("fork").Pool(len(shares) - 1) as pool:  # forks here
            theirs = pool.map_async(_share, shares[1:])
            return [[work(name) for name in shares[0]], *theirs.get()]
    finally:
        _work = None


def _spawned(
    shares: list[list[str]], work: Shareable[T], helpers: list[SpawnedHelper]
) -> list[list[T]]:
    for helper, names in zip(helpers, shares[1:], strict=True):
        helper.send(work.share(names), names)
    began = time.monotonic()
    mine = work.share(shares[0])
    own = [mine(name) for name in shares[0]]
    deadline = time.monotonic() + max(HELPER_WAIT, 2 * (time.monotonic() - began))
    return [own, *(helper.results(deadline) for helper in helpers)]


def _share(names: list[str]) -> list[Any]:
    assert _work is not None, "forked without work"
    return [_work(name) for name in names]


def _forkable() -> bool:
    """Forking is safe: no other thread in this process, and Linux."""
    return threading.active_count() == 1 and sys.platform.startswith("linux")


def _helpers(tables: int) -> int:
    """Helpers worth having: one per usable core beyond this one, at most three; none for too
    few tables."""
    if tables < MIN_TABLES:
        return 0
    return max(0, min(len(os.sched_getaffinity(0)), 4) - 1)
