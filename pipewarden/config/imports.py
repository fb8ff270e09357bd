"""The user's own check modules (`schema: myschemas:Customers`) importable wherever the
configuration is loaded: the CLI from any working directory, and every Prefect worker."""

import importlib
import sys
import threading
from pathlib import Path

_lock = threading.Lock()


def make_importable(folder: Path) -> None:
    """Put `folder` on the import path, after everything else.

    Last, so a file next to the configuration can never shadow an installed module (a `yaml.py`
    there must not replace PyYAML); a module of the user's that shares a name with one installed
    is reported by the schema loader with the file it found instead.
    """
    entry = str(folder.resolve())
    with _lock:
        if entry not in sys.path:
            sys.path.append(entry)
            importlib.invalidate_caches()
