"""The profiles stage in pipewarden.yaml: one row per customer, built in the warehouse."""

import re
from datetime import timedelta
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from pipewarden.config.durations import parse_duration
from pipewarden.config.owners import Owner


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


#: What a segment rule may compare: the scores and the raw values of the profile.
RULE_NAMES = ("r", "f", "m", "frequency", "monetary")
_CONDITION = re.compile(r"^\s*(r|f|m|frequency|monetary)\s*(>=|<=|==|!=|>|<)\s*(-?\d+(\.\d+)?)\s*$")


def parse_rule(text: str) -> list[list[tuple[str, str, float]]]:
    """`r >= 4 and f >= 4 or m == 5` as alternatives of conjunctions (`and` binds first)."""
    alternatives = []
    for alternative in re.split(r"\s+or\s+", text.strip()):
        conditions = []
        for condition in re.split(r"\s+and\s+", alternative):
            match = _CONDITION.match(condition)
            if match is None:
                raise ValueError(
                    f"cannot read {condition.strip()!r}: write NAME OP NUMBER joined by and/or, "
                    f"NAME one of {', '.join(RULE_NAMES)}, OP one of >= <= == != > <"
                )
            conditions.append((match[1], match[2], float(match[3])))
        alternatives.append(conditions)
    return alternatives


class CustomersInput(_Strict):
    """The synced customers table: one profile per row."""

    table: str
    key: str = "customer_id"
    #: The consent column copied into the profile (unset: no consent field).
    consent: str | None = None
    #: When a row last changed: a changed customer is rebuilt by the next incremental build.
    updated_at: str = "updated_at"


class OrdersInput(_Strict):
    """The synced orders table: the purchases recency, frequency and monetary are made of."""

    table: str
    customer: str = "customer_id"
    amount: str = "amount"
    #: When the order was placed (the window is on this column).
    time: str = "ordered_at"
    #: When a row last changed (defaults to `time`).
    updated_at: str | None = None


class CartInput(_Strict):
    """The current cart: a stream's latest-state row per customer, when it is a cart event."""

    stream: str
    event_types: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(min_length=1)


class SegmentRule(_Strict):
    name: str = Field(min_length=1)
    when: str

    @field_validator("when")
    @classmethod
    def _readable(cls, value: str) -> str:
        parse_rule(value)
        return value


#: What `GET /profiles/{id}` answers unless `api.fields` says otherwise.
DEFAULT_API_FIELDS = ("segment", "r", "f", "m", "last_order_at", "consent")


#: What redis-py connects to (`redis.Redis.from_url`).
REDIS_SCHEMES = ("redis", "rediss", "unix")


class ApiConfig(_Strict):
    """`GET /profiles/{customer_id}`: what it answers and how."""

    #: The fields a template reads (the projection); `customer_id` is always answered.
    fields: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        default_factory=lambda: list(DEFAULT_API_FIELDS)
    )
    #: `${VAR}` or `${prefect-secret:NAME}`; the API refuses to start without it.
    token: SecretStr | None = None
    #: `redis://…`; unset: a cache in the process.
    redis_url: str | None = Field(default=None, repr=False)
    key_prefix: str = "pipewarden:profiles:"
    cache_ttl: timedelta = timedelta(hours=1)
    #: Answered, marked as such, for a customer with neither a profile nor a snapshot.
    default_profile: dict[str, Any] = Field(default_factory=lambda: {"segment": "unknown"})

    @field_validator("cache_ttl", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("redis_url")
    @classmethod
    def _redis(cls, value: str | None) -> str | None:
        """Refused here, not after a build was committed (the URL is never quoted back)."""
        if value is None:
            return value
        parts = urlsplit(value)
        if parts.scheme not in REDIS_SCHEMES:
            raise ValueError("not a Redis URL: it must start with redis://, rediss:// or unix://")
        try:
            parts.port  # noqa: B018 - reading it checks it
        except ValueError:
            raise ValueError("not a Redis URL: its port is not a number from 0 to 65535") from None
        return value


#: Every profile's fields (`profiles.tables.profile_table`'s columns, and the cart's age the
#: API works out); `consent` only where `customers.consent` names a column.
PROFILE_FIELDS = (
    "customer_id",
    "frequency",
    "monetary",
    "last_order_at",
    "r",
    "f",
    "m",
    "segment",
    "cart_event_type",
    "cart_payload",
    "cart_updated_at",
    "cart_age_seconds",
)


class ProfilesConfig(_Strict):
    """`profiles:` one row per customer in `table`, built by `pipewarden profiles build`."""

    table: str = "customer_profiles"
    customers: CustomersInput
    orders: OrdersInput
    cart: CartInput | None = None
    #: Frequency and monetary count the orders of this window before the build.
    window: timedelta = timedelta(days=365)
    #: Quantile scores 1..scores (5: quintiles).
    scores: int = Field(default=5, ge=2, le=100)
    #: Evaluated in order; the first that holds names the segment.
    segments: list[SegmentRule] = Field(default_factory=list)
    default_segment: str = "other"
    #: Rows changed this long before the last build are looked at again (late commits).
    lookback: timedelta = timedelta(minutes=5)
    #: Past this age (of the oldest input the profiles read) the freshness check warns.
    warn_after: timedelta | None = None
    #: Past this age the freshness check errs and the API serves the last good snapshot, marked.
    error_after: timedelta | None = None
    #: Who owns the profile table's alerts, as a table's `owner` (a channel, or a mapping).
    owner: Owner | None = None
    api: ApiConfig = ApiConfig()

    @field_validator("window", "lookback", "warn_after", "error_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    def field_names(self) -> list[str]:
        """The fields a profile has, in this configuration."""
        return [*PROFILE_FIELDS, *(["consent"] if self.customers.consent else [])]

    def unknown_fields(self, fields: list[str]) -> str | None:
        """`fields` a profile does not have, named with the ones it has; None when all are."""
        unknown = [f for f in fields if f not in self.field_names()]
        if not unknown:
            return None
        known = ", ".join(self.field_names())
        return f"no profile field {', '.join(map(repr, unknown))} (fields: {known})"

    @model_validator(mode="before")
    @classmethod
    def _default_fields(cls, data: Any) -> Any:
        """The default projection answers consent only where a consent column is named."""
        if not isinstance(data, dict):
            return data
        customers, api = data.get("customers"), data.get("api") or {}
        if not isinstance(customers, dict) or customers.get("consent") or not isinstance(api, dict):
            return data
        if "fields" in api:
            return data
        fields = [f for f in DEFAULT_API_FIELDS if f != "consent"]
        return {**data, "api": {**api, "fields": fields}}

    @model_validator(mode="after")
    def _known_api_fields(self) -> "ProfilesConfig":
        problem = self.unknown_fields(self.api.fields)
        if problem:
            raise ValueError(f"api.fields: {problem}")
        return self

    @field_validator("segments", mode="before")
    @classmethod
    def _ordered(cls, value: Any) -> Any:
        # `segments: {champions: "r >= 4 and f >= 4", …}`: YAML mappings keep their order.
        if isinstance(value, dict):
            return [{"name": name, "when": when} for name, when in value.items()]
        return value


class CampaignConfig(_Strict):
    """What a send depends on: `GET /ready?campaign=NAME` is `go` only if all of it is sound."""

    tables: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    streams: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(default_factory=list)
    profile_fields: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(
        default_factory=list
    )
