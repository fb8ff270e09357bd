"""A helper process spawned (a fresh interpreter) rather than forked: safe to start from a
process with other threads, as a Prefect flow is.

The parent writes one pickle to the helper's stdin, the work and its tables' names; the helper
writes one pickle back on its stdout, the results in the same order, and exits 0. Anything else
(an exception, a crash, a kill) is a non-zero exit with the reason on its stderr. A helper whose
parent went away finds its stdin closed and leaves.
"""

from __future__ import annotations

import importlib
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

#: Imported by the helper before it waits for its work: the parent is reading meanwhile.
PRELOAD = ("pipewarden.checks.monitoring.scoring",)
#: The helper's interpreter runs this with the parent's sys.path as its arguments, so it finds
#: pipewarden where the parent did.
_BOOT = (
    "import sys; sys.path[:] = sys.argv[1:]; "
    "from pipewarden.checks.monitoring.spawned import serve; serve()"
)


class HelperFailed(RuntimeError):
    """A spawned helper died, failed or did not answer in time."""


class SpawnedHelper:
    """One helper process, started when made; `send` its work, then collect its `results`."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOT, *sys.path],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.tables = 0
        self._answer: tuple[bytes, bytes] = (b"", b"")
        self._exchange: threading.Thread | None = None

    def send(self, work: Callable[[str], Any], names: Sequence[str]) -> None:
        """Hands the helper its work (pickled) without waiting for it to take it."""
        payload = pickle.dumps((work, list(names)), protocol=pickle.HIGHEST_PROTOCOL)
        self.tables = len(names)
        self._exchange = threading.Thread(target=self._communicate, args=(payload,), daemon=True)
        self._exchange.start()

    def _communicate(self, payload: bytes) -> None:
        self._answer = self.process.communicate(payload)

    def results(self, deadline: float) -> list[Any]:
        """The results of the work sent, waiting until `deadline` (time.monotonic) at most."""
        assert self._exchange is not None, "results before send"
        self._exchange.join(max(0.0, deadline - time.monotonic()))
        if self._exchange.is_alive():
            self.stop()
            raise HelperFailed(
                f"a spawned check helper (pid {self.process.pid}) did not finish its "
                f"{self.tables} tables in time; it was stopped"
            )
        out, err = self._answer
        if self.process.returncode != 0:
            reason = err.decode(errors="replace").strip()[-3000:] or "no reason given"
            raise HelperFailed(
                f"a spawned check helper (pid {self.process.pid}) exited with "
                f"{self.process.returncode}: {reason}"
            )
        return list(pickle.loads(out))

    def stop(self) -> None:
        """Ends the helper if it still runs (its work, if any, is lost)."""
        if self.process.poll() is None:
            self.process.kill()
        if self._exchange is not None:
            self._exchange.join()
        else:
            self.process.communicate()


def serve() -> None:
    """The helper's side: import, take the work from stdin, answer on stdout."""
    answer = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # whatever else is printed goes to stderr, not into the answer
    sys.stdout = sys.stderr
    for module in PRELOAD:
        importlib.import_module(module)
    try:
        work, names = pickle.load(sys.stdin.buffer)
    except EOFError:
        sys.exit("no work: the parent went away")
    results = [work(name) for name in names]
    pickle.dump(results, answer, protocol=pickle.HIGHEST_PROTOCOL)
    answer.close()
