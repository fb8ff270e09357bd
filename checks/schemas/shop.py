"""The shop's orders."""

from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from pipewarden.checks.schemas import rules

UTC_TS = Annotated[pl.Datetime, "us", "UTC"]
MONEY = Annotated[pl.Decimal, 12, 2]
STATUSES = ["pending", "paid", "shipped", "delivered", "cancelled", "refunded"]


class Orders(pa.DataFrameModel):
    """One row per order; amounts are money: never negative, never more than two decimals."""

    order_id: pl.Int64 = pa.Field(nullable=False)
    customer_id: pl.Int64 = pa.Field(nullable=False)
    status: pl.String = pa.Field(nullable=False)
    currency: pl.String = pa.Field(nullable=False)
    amount: MONEY = pa.Field(nullable=False)
    created_at: UTC_TS = pa.Field(nullable=False)
    updated_at: UTC_TS = pa.Field(nullable=False)

    class Config:
        unique = ["order_id"]

    @pa.check("status", name="known_status")
    def _status(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.one_of(data.key, STATUSES))

    @pa.check("currency", name="iso_currency")
    def _currency(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.currency(data.key))

    @pa.check("amount", name="non_negative")
    def _amount_sign(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.non_negative(data.key))

    @pa.check("amount", name="two_decimals")
    def _amount_scale(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.two_decimals(data.key))

    @pa.check("created_at", "updated_at", name="not_in_future")
    def _future(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.not_in_future(data.key))

    @pa.dataframe_check(name="created_at<=updated_at")
    def _ordered(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.not_after("created_at", "updated_at"))
