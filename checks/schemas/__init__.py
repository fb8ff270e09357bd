"""Pandera models, one per table, referenced from the config as `checks.schemas.shop:Orders`."""

from checks.schemas.crm import Customers
from checks.schemas.shop import Orders
from checks.schemas.web import Events

__all__ = ["Customers", "Events", "Orders"]
