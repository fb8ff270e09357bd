"""Pandera models, one per table.

Referenced from the config as `pipewarden.checks.schemas.shop:Orders`. The models are imported
when first named (PEP 562), so `rules`, which the `columns:` checks use, comes without pandera.
"""

import importlib
from typing import Any

_MODELS = {"Customers": "crm", "Orders": "shop", "Events": "web"}

__all__ = ["Customers", "Events", "Orders"]


def __getattr__(name: str) -> Any:
    if name in _MODELS:
        return getattr(importlib.import_module(f"{__name__}.{_MODELS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
