"""Event streams in pipewarden.yaml: webhooks a receiver accepts, checks and lands."""

from datetime import timedelta
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, SecretStr, field_validator

from pipewarden.config.durations import parse_duration
from pipewarden.config.models import ColumnChecks, FreshnessConfig, TableConfig, steps_as_lists
from pipewarden.config.owners import Owner


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, (str, SecretStr)) else value


#: Where a value of the request is read: `header:<Name>` or `json:<field>[.<field>…]`.
Locator = Annotated[str, Field(pattern=r"^(header:[A-Za-z0-9-]+|json:[^.\s][^\s]*)$")]

#: The default signature header of each scheme.
SIGNATURE_HEADERS = {"shopify": "X-Shopify-Hmac-Sha256", "stripe": "Stripe-Signature"}


class SigningConfig(_Strict):
    """How a stream's deliveries are signed.

    `shopify`: base64 HMAC-SHA256 of the raw body in a header. `stripe`: a header
    `t=<unix time>,v1=<hex HMAC-SHA256 of "t.body">`, refused outside `tolerance`.
    Two secrets are valid at once while a secret is rotated (`secrets: [new, old]`).
    """

    scheme: Literal["shopify", "stripe"]
    #: `${VAR}` from the environment or `${prefect-secret:NAME}`; never written anywhere.
    secrets: Annotated[list[SecretStr], BeforeValidator(_one_or_many)] = Field(min_length=1)
    header: str | None = None
    tolerance: timedelta = timedelta(minutes=5)

    @field_validator("tolerance", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("secrets")
    @classmethod
    def _not_empty(cls, value: list[SecretStr]) -> list[SecretStr]:
        # An unset rotation slot (`${OLD_SECRET:-}`) is no secret: an empty key signs anything.
        kept = [s for s in value if s.get_secret_value()]
        if not kept:
            raise ValueError("every secret is empty: set the variable that holds it")
        return kept

    @property
    def header_name(self) -> str:
        return self.header or SIGNATURE_HEADERS[self.scheme]


class RateLimitConfig(_Strict):
    """A token bucket per source: `per_second` on average, bursts up to `burst`."""

    per_second: float = Field(gt=0)
    burst: int = Field(default=0, ge=0)

    @property
    def capacity(self) -> float:
        return float(self.burst or max(1.0, self.per_second))


class StreamReconcileConfig(_Strict):
    """The source table a stream mirrors: each of its keys should have arrived as an event."""

    source: str
    table: str
    source_schema: str | None = None
    #: The source's key column, equal to the event's `event_key`.
    key: str
    #: When the source row became an event (e.g. `paid_at`): the window is on this column.
    time_column: str
    #: The event type these rows are sent as (e.g. `order.paid`).
    event_type: str
    #: Where the key is in an event (the landing table keeps it as `source_key`).
    event_key: Locator = "json:id"
    #: Source rows that are events: column = value, all must hold (e.g. `{status: paid}`).
    where: dict[str, str | int | bool] = Field(default_factory=dict)
    #: How far back `pipewarden reconcile STREAM` looks by default.
    window: timedelta = timedelta(hours=24)
    #: Rows newer than this are not expected yet (deliveries in flight).
    settle: timedelta = timedelta(minutes=2)

    @field_validator("window", "settle", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)


FieldKind = Literal["text", "integer", "float", "boolean", "timestamp"]


class StreamConfig(_Strict):
    """A webhook stream: `POST /events/<name>`, signed, checked, landed in the warehouse."""

    name: str = ""
    signing: SigningConfig
    event_types: Annotated[list[str], BeforeValidator(_one_or_many)] = Field(min_length=1)
    #: The delivery's id, the idempotency key: a redelivery with the same id is not stored twice.
    event_id: Locator = "json:id"
    event_type: Locator = "json:type"
    #: The event's own time (ISO 8601 or epoch seconds); the received time when absent.
    event_time: Locator | None = "json:created_at"
    #: How far an event's own time may lie after its arrival (the sender's clock running
    #: ahead); later is refused: an event from the future would keep the stream "fresh".
    max_clock_skew: timedelta = timedelta(minutes=5)
    #: What the event is about (e.g. the customer of a cart): the latest-state table's key.
    subject: Locator | None = None
    landing_table: str = ""
    #: The newest event per subject; unset: no latest-state table.
    latest_table: str | None = None
    #: Payload fields the checks see, with their kinds (top-level or dotted JSON paths).
    fields: dict[str, FieldKind] = Field(default_factory=dict)
    schema_ref: str | None = Field(default=None, alias="schema")
    normalize: dict[str, list[str]] = Field(default_factory=dict)
    columns: dict[str, ColumnChecks] = Field(default_factory=dict)
    max_body_bytes: int = Field(default=256 * 1024, ge=64, le=64 * 1024 * 1024)
    rate_limit: RateLimitConfig | None = None
    freshness: FreshnessConfig = FreshnessConfig()
    owner: Owner | None = None
    reconcile: StreamReconcileConfig | None = None

    _steps = field_validator("normalize", mode="before")(steps_as_lists)

    @field_validator("max_clock_skew", mode="before")
    @classmethod
    def _skew(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @property
    def checked(self) -> bool:
        checks = any(c.has_checks for c in self.columns.values())
        return bool(self.schema_ref or self.normalize or checks)

    def as_table(self) -> TableConfig:
        """The stream as the checks see a table: its payload fields are the columns."""
        return TableConfig.model_construct(
            name=self.name,
            source="",
            source_table=self.name,
            target_table=self.landing_table,
            primary_key=["event_id"],
            cursor="event_time",
            schema_ref=self.schema_ref,
            normalize=self.normalize,
            columns=self.columns,
            freshness=self.freshness,
            owner=self.owner,
        )
