"""Work per table for the spawned helpers' tests: importable, so a helper can unpickle it."""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class NameAndPid:
    """Each table's name and the process that did it."""

    def __call__(self, name: str) -> tuple[str, int]:
        return name, os.getpid()

    def share(self, names: Sequence[str]) -> NameAndPid:
        return self


@dataclass(frozen=True)
class FailsInHelper:
    """Fine in the parent; in a helper it dies (`exit_code`) or never answers (None)."""

    exit_code: int | None
    parent: int = field(default_factory=os.getpid)

    def __call__(self, name: str) -> str:
        if os.getpid() != self.parent:
            if self.exit_code is None:
                threading.Event().wait()  # a helper stuck for good
            os._exit(self.exit_code)
        return name

    def share(self, names: Sequence[str]) -> FailsInHelper:
        return self
