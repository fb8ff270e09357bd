"""The configuration as typed models: what a user may write in pipewarden.yaml."""

from collections.abc import Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import (
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from pipewarden.config.durations import parse_duration
from pipewarden.config.grafana import GrafanaConfig
from pipewarden.config.owners import Owner
from pipewarden.config.timeouts import DEFAULT_TIMEOUTS, Timeouts

if TYPE_CHECKING:  # defined beside, resolved by pipewarden.config (it uses the models here)
    from pipewarden.config.profiles import CampaignConfig, ProfilesConfig
    from pipewarden.config.streams import StreamConfig


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


#: A list of names that may be written as one name (`primary_key: id`).
Names = Annotated[list[str], BeforeValidator(_one_or_many)]


def steps_as_lists(value: Any) -> Any:
    """`normalize: {email: trim}`: one step may be written without a list."""
    if isinstance(value, dict):
        return {k: [v] if isinstance(v, str) else v for k, v in value.items()}
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _database_url(value: str) -> str:
    """A URL SQLAlchemy reads as written, refused at load otherwise (its password hidden)."""
    from pipewarden.config.urls import parse_url

    parse_url(value)
    return value


class WarehouseConfig(_Strict):
    """Where the copies land, and where pipewarden keeps its own tables."""

    url: str = Field(repr=False)  # may hold a password
    schema_name: str | None = Field(default=None, alias="schema")

    _url = field_validator("url")(_database_url)


#: When a flow ends Failed: on error-level problems (the default), on warnings too, or never.
FailOn = Literal["error", "warn", "never"]


class SourceConfig(_Strict):
    """A system rows are copied from (any SQLAlchemy URL)."""

    url: str = Field(repr=False)  # may hold a password
    #: Tasks reading this source at once, across every flow run and worker (a Prefect global
    #: concurrency limit named `pipewarden-source-<name>`); unset: no limit.
    max_concurrent_reads: int | None = Field(default=None, ge=1)
    #: How long a task waits for a read slot before it fails (it never waits for ever).
    read_slot_timeout: timedelta = timedelta(hours=1)

    @field_validator("read_slot_timeout", mode="before")
    @classmethod
    def _slot_timeout(cls, value: Any) -> timedelta:
        return parse_duration(value)

    _url = field_validator("url")(_database_url)


class FreshnessConfig(_Strict):
    """How old the newest loaded row may be before the table is stale."""

    warn_after: timedelta | None = None
    error_after: timedelta | None = None

    @field_validator("warn_after", "error_after", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta | None:
        return None if value is None else parse_duration(value)

    @model_validator(mode="after")
    def _ordered(self) -> "FreshnessConfig":
        if self.warn_after and self.error_after and self.warn_after > self.error_after:
            raise ValueError("warn_after must not be longer than error_after")
        return self


class AnomalyConfig(_Strict):
    """How a table's metrics are watched for anomalies (`checks.monitoring.anomaly.detector`)."""

    #: low (4.5), medium (3.5) or high (3.0), or the threshold itself: how many robust standard
    #: deviations a point must leave its expected value by to fire; lower fires more.
    sensitivity: Literal["low", "medium", "high"] | float | None = None
    #: Smallest absolute change from the expected value that may fire, in the metric's unit.
    min_change: float | None = Field(default=None, ge=0)
    #: auto (found in the data), none, or a calendar season: hour_of_day, hour_of_week,
    #: day_of_week, day_of_month.
    season: (
        Literal["auto", "none", "hour_of_day", "hour_of_week", "day_of_week", "day_of_month"] | None
    ) = None

    @field_validator("sensitivity")
    @classmethod
    def _threshold(cls, value: Any) -> Any:
        if isinstance(value, float) and not 0 < value < 40:
            raise ValueError(f"{value} is no threshold: low, medium, high or a number in (0, 40)")
        return value


class ColumnChecks(_Strict):
    """One column's checks written in YAML, compiled to Pandera by `checks.validation.columns`."""

    #: False: NULL fails (`not_nullable`). Unset: the Python model decides, else NULL passes.
    nullable: bool | None = None
    #: No two rows of a batch share a value (`unique`).
    unique: bool = False
    #: The allowed values (`isin(...)`).
    in_: list[Any] | None = Field(default=None, alias="in", min_length=1)
    #: `[low, high]`, both included; `null` leaves a side open (`in_range`, `ge`, `le`).
    between: tuple[Any, Any] | None = None
    #: A regular expression (polars' syntax) found in the value; anchor it with ^…$ to match
    #: the whole (`str_contains(...)`).
    regex: str | None = None
    #: The longest text allowed, in characters (`str_length(None, n)`).
    max_length: int | None = Field(default=None, ge=1)
    #: Named rules: email, iso_country, iso_currency, url, json_object, non_negative,
    #: two_decimals, not_in_future, iso_timestamp_not_in_future.
    rules: Names = Field(default_factory=list)
    #: Customer data: shown outside the warehouse (Slack, the CLI, stored check examples) as
    #: a salted hash prefix only (`pipewarden.config.pii`). Not a check: it holds no row back.
    pii: bool = False

    @property
    def has_checks(self) -> bool:
        """Whether anything here holds a row back (`pii` alone does not)."""
        return bool(
            self.nullable is not None
            or self.unique
            or self.in_ is not None
            or self.between is not None
            or self.regex is not None
            or self.max_length is not None
            or self.rules
        )

    @field_validator("between")
    @classmethod
    def _range(cls, value: tuple[Any, Any] | None) -> tuple[Any, Any] | None:
        if value is None:
            return None
        low, high = value
        if low is None and high is None:
            raise ValueError("give a low or a high bound (or both): [0, 100], [0, null]")
        try:
            inverted = low is not None and high is not None and low > high
        except TypeError:
            raise ValueError(f"bounds {low!r} and {high!r} cannot be compared") from None
        if inverted:
            raise ValueError(f"low bound {low!r} is above high bound {high!r}")
        return value


class TableConfig(_Strict):
    """One table copied from a source into the warehouse."""

    name: str = ""
    source: str
    source_table: str = ""
    source_schema: str | None = None
    target_table: str = ""
    primary_key: Names
    cursor: str
    #: Re-read window before the watermark: a duration for a time cursor, a count of cursor
    #: values for a number cursor; unset, 1s on a time cursor and 0 on others. Each run
    #: re-reads at least the cursor's tick whatever it says (pipewarden.sync.cursor).
    lookback: timedelta | int | None = None
    schedule: Literal["realtime", "hourly", "daily"] = "hourly"
    freshness: FreshnessConfig = FreshnessConfig()
    anomaly: AnomalyConfig = AnomalyConfig()
    owner: Owner | None = None
    batch_size: int = Field(default=50_000, ge=1, le=5_000_000)
    schema_ref: str | None = Field(default=None, alias="schema")
    normalize: dict[str, list[str]] = Field(default_factory=dict)
    #: Checks per column written in YAML; with `schema` they are added to the model's.
    columns: dict[str, ColumnChecks] = Field(default_factory=dict)

    @field_validator("primary_key")
    @classmethod
    def _key_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("primary_key needs at least one column")
        return value

    @field_validator("lookback", mode="before")
    @classmethod
    def _lookback(cls, value: Any) -> timedelta | int | None:
        # A number cursor (a sequence, a version) looks back by a count, not by time; which one
        # the cursor takes is checked against its type when a sync reflects it.
        if value is None:
            return None
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 0:
                raise ValueError(
                    f"{value} is negative: a lookback re-reads rows before the watermark; "
                    "a negative one would skip rows after it for ever"
                )
            return value
        if isinstance(value, str) and value.strip().startswith("-"):
            raise ValueError(f"{value!r} is negative: a lookback must be 0 or more")
        return parse_duration(value)

    _steps = field_validator("normalize", mode="before")(steps_as_lists)


class SlackLinks(_Strict):
    """Where an alert's links point: the Prefect UI and the Grafana dashboard of a table."""

    prefect_ui: AnyHttpUrl | None = None
    #: A dashboard URL; the alert links to it with `var-table=<table>` added.
    grafana: AnyHttpUrl | None = None


#: The longest one wait before a retry of a Slack request (a back-off, a Retry-After slept
#: through); Slack asking for a longer one sends the alert back to the outbox, due then.
SLACK_MAX_WAIT_SECONDS = 20
#: The longest the post of one alert may take, its retries and waits included: half the
#: delivery claim's lease (`pipewarden.alerts.deliver.LEASE`), so no other run takes an alert
#: over while it is being posted.
SLACK_POST_BUDGET_SECONDS = 300


#: The validation context's key for why the loader could not give `slack.token` a value.
TOKEN_PROBLEM = "slack_token_problem"


class SlackConfig(_Strict):
    """Delivery of the alert outbox to Slack. Without it, alerts wait in the outbox."""

    #: A bot token (`${SLACK_BOT_TOKEN}`); SecretStr keeps it out of reprs, logs and errors.
    token: SecretStr
    default_channel: str = Field(min_length=1)
    #: Slack's Web API by default; a proxy or a test server otherwise (trailing slash added).
    base_url: AnyHttpUrl | None = None
    links: SlackLinks = SlackLinks()
    #: Retries of one request (rate limits, server and connection errors) before the alert
    #: goes back to the outbox for a later delivery run.
    retries: int = Field(default=2, ge=0, le=10)
    timeout_seconds: int = Field(default=30, ge=1, le=300)
    #: Tell an incident that keeps failing again, in its thread, once this long has passed
    #: since it was last told (opened, worse, reminded); unset: repeats stay quiet.
    remind_every: timedelta | None = None
    _token_problem: str | None = PrivateAttr(default=None)

    @field_validator("remind_every", mode="before")
    @classmethod
    def _reminder(cls, value: Any) -> timedelta | None:
        if value is None:
            return None
        every = parse_duration(value)
        if every < timedelta(minutes=5):
            raise ValueError(f"{value!r} is under 5m: a reminder that often is noise")
        return every

    @model_validator(mode="after")
    def _token_from_loader(self, info: ValidationInfo) -> "SlackConfig":
        """The loader's word on the token: its variable not set on this machine."""
        self._token_problem = (info.context or {}).get(TOKEN_PROBLEM)
        return self

    @property
    def token_problem(self) -> str | None:
        """Why no alert can be delivered with this token (unset, empty), or None.

        Alerts never block data: a configuration without a usable token still loads, the
        stages run, and their alerts wait in the outbox until a token is there.
        """
        if self._token_problem:
            return self._token_problem
        if not self.token.get_secret_value().strip():
            return "slack.token is empty"
        return None

    @model_validator(mode="after")
    def _post_within_budget(self) -> "SlackConfig":
        longest = self.longest_post_seconds()
        if longest > SLACK_POST_BUDGET_SECONDS:
            raise ValueError(
                f"retries {self.retries} with timeout_seconds {self.timeout_seconds} let one "
                f"alert's post take up to {longest} s ({self.retries + 1} requests, "
                f"{self.retries} waits of up to {SLACK_MAX_WAIT_SECONDS + 1} s), more than "
                f"{SLACK_POST_BUDGET_SECONDS} s: lower one of them"
            )
        return self

    def longest_post_seconds(self) -> int:
        """Every request timing out, every wait at its longest (the jitter's second included)."""
        waits = self.retries * (SLACK_MAX_WAIT_SECONDS + 1)
        return (self.retries + 1) * self.timeout_seconds + waits


class TimeoutsConfig(_Strict):
    """How long a database call may wait (`30s`, `5m`), on the warehouse and every source."""

    connect: timedelta = timedelta(seconds=DEFAULT_TIMEOUTS.connect)
    statement: timedelta = timedelta(seconds=DEFAULT_TIMEOUTS.statement)
    lock: timedelta = timedelta(seconds=DEFAULT_TIMEOUTS.lock)
    #: How long a sync waits for another sync of the same table to finish before giving up.
    run_lock: timedelta = timedelta(minutes=5)

    @field_validator("connect", "statement", "lock", "run_lock", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> timedelta:
        return parse_duration(value)

    @field_validator("connect", "statement", "lock")
    @classmethod
    def _positive(cls, value: timedelta) -> timedelta:
        if value <= timedelta(0):
            raise ValueError("must be longer than 0s: no database call may wait for ever")
        return value

    def engine(self) -> Timeouts:
        """The limits every engine of this configuration gets."""
        return Timeouts(
            connect=self.connect.total_seconds(),
            statement=self.statement.total_seconds(),
            lock=self.lock.total_seconds(),
        )


class PipewardenConfig(_Strict):
    """The whole file."""

    warehouse: WarehouseConfig
    sources: dict[str, SourceConfig]
    tables: dict[str, TableConfig]
    #: Webhook streams the event receiver accepts (`pipewarden events serve`).
    streams: "dict[str, StreamConfig]" = Field(default_factory=dict)
    #: One profile per customer, built in the warehouse (`pipewarden profiles build`).
    profiles: "ProfilesConfig | None" = None
    #: What each campaign's send depends on (`pipewarden ready NAME`).
    campaigns: "dict[str, CampaignConfig]" = Field(default_factory=dict)
    timeouts: TimeoutsConfig = TimeoutsConfig()
    slack: SlackConfig | None = None
    grafana: GrafanaConfig | None = None
    #: The folder of the user's check modules (`schema: myschemas:Customers`), relative to the
    #: configuration file; its own folder when unset. Importable wherever the file is loaded.
    schemas_path: str | None = None
    #: A flow's default for its `fail_on` parameter.
    fail_on: FailOn = "error"

    @model_validator(mode="before")
    @classmethod
    def _names_and_defaults(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("tables"), dict):
            tables = {}
            for name, table in data["tables"].items():
                if isinstance(table, dict):
                    table = {"name": name, "source_table": name, "target_table": name, **table}
                tables[name] = table
            data = {**data, "tables": tables}
        if isinstance(data, dict) and isinstance(data.get("streams"), dict):
            streams = {
                name: {"name": name, "landing_table": name, **stream}
                if isinstance(stream, dict)
                else stream
                for name, stream in data["streams"].items()
            }
            data = {**data, "streams": streams}
        return data

    @model_validator(mode="after")
    def _sources_exist(self) -> "PipewardenConfig":
        for name, table in self.tables.items():
            if table.source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                raise ValueError(
                    f"tables.{name}.source: unknown source {table.source!r} (known: {known})"
                )
        for name, stream in self.streams.items():
            if name in self.tables:
                raise ValueError(f"streams.{name}: a table has that name already")
            source = stream.reconcile.source if stream.reconcile else None
            if source is not None and source not in self.sources:
                known = ", ".join(sorted(self.sources)) or "none"
                raise ValueError(
                    f"streams.{name}.reconcile.source: unknown source {source!r} (known: {known})"
                )
        for name, campaign in self.campaigns.items():
            unknown = [t for t in campaign.tables if t not in self.tables]
            unknown += [s for s in campaign.streams if s not in self.streams]
            if unknown:
                raise ValueError(f"campaigns.{name}: unknown tables or streams {unknown}")
            if campaign.profile_fields and self.profiles is None:
                raise ValueError(f"campaigns.{name}.profile_fields: no profiles are declared")
            problem = self.profiles and self.profiles.unknown_fields(campaign.profile_fields)
            if problem:
                raise ValueError(f"campaigns.{name}.profile_fields: {problem}")
        profile_table = self.profiles.table if self.profiles else None
        if profile_table in self.tables or profile_table in self.streams:
            raise ValueError(f"profiles.table: a table or stream is called {profile_table!r}")
        cart = self.profiles.cart if self.profiles else None
        if cart is not None and not (
            cart.stream in self.streams and self.streams[cart.stream].latest_table
        ):
            raise ValueError(
                f"profiles.cart.stream: {cart.stream!r} is not a stream with a latest_table"
            )
        return self

    def tables_named(self, names: Sequence[str]) -> list[str]:
        """`names`, checked before anything runs: the unknown ones fail together, with the
        configured ones."""
        unknown = [name for name in names if name not in self.tables]
        if unknown:
            known = ", ".join(sorted(self.tables)) or "none"
            listed = ", ".join(repr(name) for name in unknown)
            raise ValueError(
                f"unknown table{'s' if len(unknown) > 1 else ''} {listed} (configured: {known})"
            )
        return list(names)

    def tables_of(self, schedule: str | None) -> list[str]:
        """The tables with this schedule class (None: every table)."""
        return [n for n, t in self.tables.items() if schedule is None or t.schedule == schedule]

    def watched(self, name: str) -> "TableConfig | StreamConfig | ProfilesConfig | None":
        """The table, stream or profile table called `name` (each checked, alerted on, owned),
        or None."""
        if name in self.tables:
            return self.tables[name]
        if name in self.streams:
            return self.streams[name]
        if self.profiles is not None and self.profiles.table == name:
            return self.profiles
        return None

    def table(self, name: str) -> TableConfig:
        """The table called `name`, or a KeyError that lists the known ones."""
        try:
            return self.tables[name]
        except KeyError:
            known = ", ".join(sorted(self.tables))
            raise KeyError(f"unknown table {name!r} (configured: {known})") from None

    def owner_of(self, name: str) -> Owner | None:
        """The `owner` of the table, stream or profile table called `name`; None for none (or
        unknown)."""
        watched = self.watched(name)
        return watched.owner if watched is not None else None
