"""Web events: page views to purchases, anonymous until a customer signs in."""

from typing import Annotated

import pandera.polars as pa
import polars as pl
from pandera.api.polars.types import PolarsData

from pipewarden.checks.schemas import rules

UTC_TS = Annotated[pl.Datetime, "us", "UTC"]
EVENT_TYPES = ["page_view", "add_to_cart", "checkout", "purchase", "email_open", "email_click"]


class Events(pa.DataFrameModel):
    """One row per event; `customer_id` is NULL for visitors who have not signed in."""

    event_id: pl.Int64 = pa.Field(nullable=False)
    customer_id: pl.Int64 = pa.Field(nullable=True)
    event_type: pl.String = pa.Field(nullable=False)
    url: pl.String = pa.Field(nullable=True)
    occurred_at: UTC_TS = pa.Field(nullable=False)
    properties: pl.String = pa.Field(nullable=True)

    class Config:
        unique = ["event_id"]

    @pa.check("event_type", name="known_event_type")
    def _type(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.one_of(data.key, EVENT_TYPES))

    @pa.check("url", name="url_syntax")
    def _url(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.url_or_path(data.key))

    @pa.check("occurred_at", name="not_in_future")
    def _future(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.not_in_future(data.key))

    @pa.check("properties", name="json_object")
    def _properties(cls, data: PolarsData) -> pl.LazyFrame:
        return data.lazyframe.select(rules.json_object(data.key))
