"""The CRM's customers, as the email programme needs them."""

from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from pipewarden.checks.schemas import rules

UTC_TS = Annotated[pl.Datetime, "us", "UTC"]
MONEY = Annotated[pl.Decimal, 12, 2]


class Customers(pa.DataFrameModel):
    """One row per customer; `signup_date` arrives in mixed formats and is normalized to ISO."""

    customer_id: pl.Int64 = pa.Field(nullable=False)
    email: pl.String = pa.Field(nullable=False)
    first_name: pl.String = pa.Field(nullable=True)
    last_name: pl.String = pa.Field(nullable=True)
    country: pl.String = pa.Field(nullable=True)
    signup_date: pl.String = pa.Field(nullable=True)
    marketing_opt_in: pl.Boolean = pa.Field(nullable=True)
    lifetime_value: MONEY = pa.Field(nullable=True)
    created_at: UTC_TS = pa.Field(nullable=False)
    updated_at: UTC_TS = pa.Field(nullable=False)

    class Config:
        unique = ["customer_id"]

    @pa.check("email", name="email_syntax")
    def _email(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.email(data.key))

    @pa.check("country", name="iso_country")
    def _country(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.country(data.key))

    @pa.check("signup_date", name="iso_timestamp_not_in_future")
    def _signup(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.iso_timestamp_not_in_future(data.key))

    @pa.check("lifetime_value", name="non_negative")
    def _ltv_sign(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.non_negative(data.key))

    @pa.check("lifetime_value", name="two_decimals")
    def _ltv_scale(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.two_decimals(data.key))

    @pa.check("created_at", "updated_at", name="not_in_future")
    def _future(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.not_in_future(data.key))

    @pa.dataframe_check(name="created_at<=updated_at")
    def _ordered(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.not_after("created_at", "updated_at"))
