"""Pandera models, one per table.

Referenced from the config as `pipewarden.checks.schemas.shop:Orders`.
"""

from pipewarden.checks.schemas.crm import Customers
from pipewarden.checks.schemas.shop import Orders
from pipewarden.checks.schemas.web import Events

__all__ = ["Customers", "Events", "Orders"]
