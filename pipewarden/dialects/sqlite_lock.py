"""Run locks for SQLite warehouses: `flock` on a file beside the database, one per name.

`flock` belongs to the open file, so two threads of one process exclude each other as two
processes do, and the kernel releases it when its holder dies however it dies.
"""

import fcntl
import hashlib
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

#: How often a waiting run tries the lock again.
_POLL_SECONDS = 0.05
#: In-memory databases live in one process: a thread lock per name serves them.
_memory_locks: dict[str, threading.Lock] = {}
_memory_guard = threading.Lock()


@contextmanager
def file_lock(
    database: str | None, name: str, wait: float, on_wait: Callable[[], None]
) -> Iterator[bool]:
    """Hold the lock on `name` for this database; yields False after `wait` seconds without.
    `on_wait` is called once when another holder has it."""
    if not database or database == ":memory:" or database.startswith("file::memory:"):
        with _memory_guard:
            lock = _memory_locks.setdefault(name, threading.Lock())
        held = lock.acquire(blocking=False)
        if not held:
            on_wait()
            held = lock.acquire(timeout=max(wait, 0.0))
        try:
            yield held
        finally:
            if held:
                lock.release()
        return
    digest = hashlib.sha1(name.encode()).hexdigest()[:16]
    path = Path(f"{database}.pipewarden-locks") / f"{digest}.lock"
    path.parent.mkdir(exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        held = _acquire(fd, wait, on_wait)
        try:
            yield held
        finally:
            if held:
                fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, wait: float, on_wait: Callable[[], None]) -> bool:
    deadline = time.monotonic() + wait
    waiting = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if not waiting:
                on_wait()
                waiting = True
            if time.monotonic() >= deadline:
                return False
            time.sleep(_POLL_SECONDS)
