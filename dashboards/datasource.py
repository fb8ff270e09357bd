"""The warehouse as a Grafana PostgreSQL datasource: what to send, and whether Grafana differs."""

import copy
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from pipewarden.config.urls import display_url, parse_url
from pipewarden.dashboards.catalog import POSTGRES_PLUGIN

#: Grafana 10.2 renamed the plugin; a datasource created before says `postgres`, and is the same.
PLUGIN_IDS = frozenset({POSTGRES_PLUGIN, "postgres"})


class DatasourceError(ValueError):
    """The URL cannot become a Grafana PostgreSQL datasource; the message hides the password."""


@dataclass(frozen=True)
class DatasourceSpec:
    """What Grafana should hold: the settings it shows, and the password it never returns."""

    settings: dict[str, Any]
    password: SecretStr | None

    @property
    def uid(self) -> str:
        return str(self.settings["uid"])

    @property
    def name(self) -> str:
        return str(self.settings["name"])

    def payload(self) -> dict[str, Any]:
        """The body of a create or update; the password goes in `secureJsonData`."""
        body = copy.deepcopy(self.settings)
        if self.password is not None:
            body["secureJsonData"] = {"password": self.password.get_secret_value()}
        return body

    def differences(self, current: dict[str, Any]) -> list[str]:
        """Settings Grafana holds otherwise (by name); `password` when it holds none at all."""
        changed = []
        for key, wanted in self.settings.items():
            if key == "jsonData":
                held = current.get("jsonData") or {}
                changed += [f"jsonData.{k}" for k, v in wanted.items() if held.get(k) != v]
            elif key == "type":
                if current.get("type") not in PLUGIN_IDS:
                    changed.append(key)
            elif current.get(key) != wanted:
                changed.append(key)
        secure = current.get("secureJsonFields") or {}
        if self.password is not None and not secure.get("password"):
            changed.append("password")
        return changed


def datasource_spec(name: str, uid: str, url: str) -> DatasourceSpec:
    """The datasource for a SQLAlchemy PostgreSQL URL (`?sslmode=` kept; `require` otherwise)."""
    parsed = parse_url(url)
    backend = parsed.get_backend_name()
    if backend != "postgresql":
        raise DatasourceError(
            f"Grafana reads the warehouse through PostgreSQL, but {display_url(url)} is {backend}:"
            " set grafana.warehouse_url to a PostgreSQL URL"
        )
    if not parsed.database:
        raise DatasourceError(f"{display_url(url)} names no database")
    host = parsed.host or "localhost"
    if ":" in host:
        host = f"[{host}]"  # an IPv6 address
    sslmode = parsed.query.get("sslmode", "require")
    settings: dict[str, Any] = {
        "uid": uid,
        "name": name,
        "type": POSTGRES_PLUGIN,
        "access": "proxy",
        "url": f"{host}:{parsed.port or 5432}",
        "user": parsed.username or "",
        "isDefault": False,
        "jsonData": {
            "database": parsed.database,
            "sslmode": sslmode if isinstance(sslmode, str) else sslmode[-1],
            # The dashboards' $__timeGroup must stay plain SQL, not TimescaleDB's time_bucket.
            "timescaledb": False,
        },
    }
    password = SecretStr(parsed.password) if parsed.password else None
    return DatasourceSpec(settings, password)
