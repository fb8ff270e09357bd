"""The Grafana API as provisioning calls it: a client from the configuration, and errors that
say what went wrong and what to change, without the token or a password."""

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import niquests
from grafana_client import GrafanaApi
from grafana_client.client import (
    GrafanaClientError,
    GrafanaException,
    GrafanaServerError,
    GrafanaTimeoutError,
    GrafanaUnauthorizedError,
)

from pipewarden.config.grafana import GrafanaConfig
from pipewarden.config.urls import redact_secrets


class ProvisionError(RuntimeError):
    """Provisioning stopped; the message names the step, Grafana's answer and what to do."""


def grafana_api(config: GrafanaConfig) -> GrafanaApi:
    """A client for the configured server, authenticated by the token."""
    parts = urlsplit(str(config.url))
    # grafana-client appends `api` to the path as it is: a sub-path needs its trailing slash.
    path = parts.path if parts.path.endswith("/") else parts.path + "/"
    url = urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))
    return GrafanaApi.from_url(
        url, credential=config.token.get_secret_value(), timeout=config.timeout_seconds
    )


def status_of(error: GrafanaException) -> str:
    """Grafana's `status` word of a refusal (`version-mismatch`, `name-exists`), or ''."""
    body = error.response
    return str(body.get("status", "")) if isinstance(body, dict) else ""


def message_of(error: GrafanaException) -> str:
    """Grafana's `message` of a refusal, or the body as text."""
    body = error.response
    if isinstance(body, dict) and "message" in body:
        return str(body["message"])
    return str(body or error.message)


@contextmanager
def step(config: GrafanaConfig, what: str, secrets: Iterable[str] = ()) -> Iterator[None]:
    """Run one step of provisioning; a failure becomes a ProvisionError that names it.

    `secrets` (the token, the datasource's password) are cut from every message, whatever
    Grafana or the network stack echoed back.
    """
    where = f"Grafana at {config.url}"
    hidden = [config.token.get_secret_value(), *secrets]
    try:
        yield
    except ProvisionError:
        raise
    except GrafanaUnauthorizedError:
        text = (
            f"{where} refused the token while {what} (401 Unauthorized): check grafana.token;"
            " it must be a valid service account token of this Grafana's organization"
        )
        raise ProvisionError(_scrub(text, hidden)) from None
    except GrafanaTimeoutError:
        text = f"{where} did not answer within {config.timeout_seconds:g}s while {what}"
        raise ProvisionError(_scrub(text, hidden)) from None
    except GrafanaClientError as error:
        if error.status_code == 403:
            text = (
                f"{where} does not let the token's service account go on {what} (403 Forbidden):"
                " it needs the Admin role to manage datasources, Editor for folders and dashboards"
            )
        else:
            text = f"{where} refused {what} ({error.status_code}): {message_of(error)}"
        raise ProvisionError(_scrub(text, hidden)) from None
    except GrafanaServerError as error:
        text = (
            f"{where} failed while {what} ({error.status_code}): {message_of(error)}; the steps"
            " before this one are done, and running provision again resumes"
        )
        raise ProvisionError(_scrub(text, hidden)) from None
    except (GrafanaException, niquests.exceptions.RequestException) as error:
        reason = getattr(error, "message", None) or str(error) or type(error).__name__
        text = f"cannot reach {where} while {what}: {reason}"
        raise ProvisionError(_scrub(text, hidden)) from None


def _scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return redact_secrets(text)
