"""The garbage collector while a command starts up.

A command's start builds the process's long-lived heap: the libraries' modules and classes,
pydantic's validators, the configuration (about 60,000 objects for `status`, 125,000 for a
sync). With the default thresholds the collector walks that growing heap again and again on
the way up (135 collections: 40 ms of `status`'s 0.41 s CPU, 160 ms of a sync's 1.1 s), and
finds almost nothing to free. So `main` lets the young generation grow to 100,000 objects while
the command imports and loads its configuration, then `configured` freezes what is alive (kept
out of the collector's sight, as a server's `settle_heap` does) and restores the thresholds, so
the command's own work is collected as before. The commands that load no configuration
(`demo`, `backtest`) keep collecting every 100,000 young objects to the end: later, not never.
"""

import gc

#: Young objects between collections while starting (the default is 700): a command's whole
#: start fits in about one.
START_UP_THRESHOLD = 100_000

_restore: tuple[int, int, int] | None = None


def defer_collections() -> None:
    """Collect rarely until `settle_start_up`; called once by the `pipewarden` command."""
    global _restore
    if _restore is None:
        _restore = gc.get_threshold()
        gc.set_threshold(START_UP_THRESHOLD, *_restore[1:])


def settle_start_up() -> None:
    """Freeze the start-up heap and collect as before from here on. Does nothing in a process
    that did not defer (a test running the app in process keeps its collector untouched)."""
    global _restore
    if _restore is not None:
        gc.freeze()
        gc.set_threshold(*_restore)
        _restore = None
