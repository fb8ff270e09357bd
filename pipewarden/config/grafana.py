"""The optional `grafana:` section: where `pipewarden dashboards provision` puts the dashboards."""

from urllib.parse import urlsplit

from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, SecretStr, field_validator


class GrafanaConfig(BaseModel):
    """A Grafana server, the token that may change it, and the names pipewarden gives it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: The server's base URL (`https://grafana.internal`, or with a sub-path).
    url: AnyHttpUrl
    #: A service account token (`${GRAFANA_TOKEN}`); Admin role, as datasources need it.
    token: SecretStr
    folder: str = Field(default="pipewarden", min_length=1)
    folder_uid: str = Field(default="pipewarden", min_length=1, max_length=40)
    datasource_name: str = Field(default="pipewarden warehouse", min_length=1)
    datasource_uid: str = Field(default="pipewarden-warehouse", min_length=1, max_length=40)
    #: The URL Grafana connects with: a read-only role's (see README, "Dashboards"). Without it
    #: the datasource gets the warehouse URL, and with it the writer's rights.
    warehouse_url: str | None = Field(default=None, repr=False)  # may hold a password
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    #: The Prefect UI the sync runs panel links flow runs to; slack.links.prefect_ui without it.
    prefect_ui: AnyHttpUrl | None = None

    @field_validator("url")
    @classmethod
    def _no_credentials(cls, value: AnyHttpUrl) -> AnyHttpUrl:
        # The token is the one credential: a password in the URL would be logged with it.
        if urlsplit(str(value)).password or value.username:
            raise ValueError("put no user or password in grafana.url; use grafana.token")
        return value
