"""Talking to Slack: a WebClient with retry handlers, and what an answer means for an alert.

slack_sdk retries only connection errors, once, by default. The client here also retries rate
limits (HTTP 429, sleeping as long as Retry-After says) and server errors (500, 503), each up to
`slack.retries` times within one request. What is still refused after that is classified:
transient (rate limit, server error, no connection: the alert goes back to the outbox),
permanent (no such channel, message refused: the alert is marked failed), or a token problem
(permanent, and every other alert would fail the same way, so delivery stops).
"""

import http.client
import re
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from pipewarden.alerts.slack_message import SlackMessage, fit_plain
from pipewarden.config.models import SlackConfig

#: Error codes in Slack's answer that say a later try may succeed.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)
#: Error codes about the token or its rights: no message can be sent with it.
TOKEN_ERRORS = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "account_inactive",
        "token_revoked",
        "token_expired",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",
    }
)
_SLACK_CODE = re.compile(r"[a-z0-9_]+")


@dataclass(frozen=True)
class Posted:
    """Slack took the message: the channel id it answered with and the message's ts."""

    channel: str
    ts: str | None


@dataclass(frozen=True)
class Refused:
    """Slack did not take the message, and why (never containing the token)."""

    error: str
    transient: bool
    token: bool = False
    retry_after: float | None = None


def slack_client(config: SlackConfig) -> WebClient:
    """A WebClient for `config`, retrying rate limits, server and connection errors."""
    base_url = str(config.base_url) if config.base_url is not None else WebClient.BASE_URL
    handlers = [
        ConnectionErrorRetryHandler(max_retry_count=config.retries),
        RateLimitErrorRetryHandler(max_retry_count=config.retries),
        ServerErrorRetryHandler(max_retry_count=config.retries),
    ]
    return WebClient(
        token=config.token.get_secret_value(),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=config.timeout_seconds,
        retry_handlers=handlers,
    )


def post(client: WebClient, channel: str, message: SlackMessage) -> Posted | Refused:
    """`chat.postMessage` with blocks and the text fallback; Slack's answer, classified."""
    try:
        answer = client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
    except SlackApiError as error:
        return _refused(error, client.token)
    except (OSError, http.client.HTTPException, SlackClientError) as error:
        # URLError, refused or reset connections, time-outs: Slack (or the way to it) is down.
        text = _hide(f"cannot reach Slack: {type(error).__name__}: {error}", client.token)
        return Refused(error=text, transient=True)
    return Posted(channel=str(answer.get("channel") or channel), ts=answer.get("ts"))


def _refused(error: SlackApiError, token: str | None) -> Refused:
    response = error.response
    status = response.status_code
    data = response.data if isinstance(response.data, dict) else {}
    code = data.get("error")
    slack_code = isinstance(code, str) and _SLACK_CODE.fullmatch(code) is not None
    retry_after = _retry_after(response.headers)
    if status == 429 or code in TRANSIENT_ERRORS:
        wait = f", Retry-After {retry_after:g}s" if retry_after is not None else ""
        text = f"HTTP {status} {code or 'rate limited'}{wait}"
        return Refused(text, transient=True, retry_after=retry_after)
    if status >= 500 or not slack_code:
        # A server error, or an answer that is not Slack's (a proxy's page): try again later.
        detail = fit_plain(str(code or ""), 200)
        return Refused(_hide(f"HTTP {status} from Slack: {detail}".rstrip(": "), token), True)
    return Refused(str(code), transient=False, token=code in TOKEN_ERRORS)


def _retry_after(headers: dict[str, object] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return float(str(raw))
            except ValueError:
                return None
    return None


def _hide(text: str, token: str | None) -> str:
    """Belt and braces: the token never appears in an error we keep or show."""
    return text.replace(token, "***") if token else text
