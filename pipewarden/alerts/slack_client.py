"""Talking to Slack: a WebClient with retry handlers, and what an answer means for an alert.

slack_sdk retries only connection errors, once, by default. The client here also retries rate
limits (HTTP 429, sleeping as long as Retry-After says, up to `SLACK_MAX_WAIT_SECONDS`) and
server errors (500, 503), up to `slack.retries` times within one request, every wait capped, so
one post ends well inside the delivery claim's lease (the configuration checks the sum). What
is still refused after that is classified: transient (rate limit, server error, no
connection: the alert goes back to the outbox), permanent (no such channel, message refused:
the alert is marked failed), or a token problem (permanent, and every other alert would fail
the same way, so delivery stops).
"""

import http.client
import random
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry import HttpRequest, HttpResponse, RetryState
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.http_retry.builtin_interval_calculators import BackoffRetryIntervalCalculator
from slack_sdk.web import SlackResponse

from pipewarden.alerts.slack_message import SlackMessage, fit_plain
from pipewarden.config.models import SLACK_MAX_WAIT_SECONDS, SlackConfig

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
#: Error codes saying a thread's parent can no longer be updated or replied to (deleted,
#: posted by someone else, its channel archived or gone): the incident needs a new parent.
GONE_ERRORS = frozenset(
    {
        "message_not_found",
        "cant_update_message",
        "edit_window_closed",
        "is_archived",
        "channel_not_found",
        "thread_not_found",
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


class CappedBackoff(BackoffRetryIntervalCalculator):
    """slack_sdk's exponential back-off with jitter, each wait at most `SLACK_MAX_WAIT_SECONDS`."""

    def calculate_sleep_duration(self, current_attempt: int) -> float:
        return min(float(SLACK_MAX_WAIT_SECONDS), super().calculate_sleep_duration(current_attempt))


class CappedRateLimitRetryHandler(RateLimitErrorRetryHandler):
    """Sleeps through a 429 only when Retry-After is at most `SLACK_MAX_WAIT_SECONDS`.

    slack_sdk's own handler sleeps for whatever Retry-After says: a delivery run could then
    hold an alert past its claim's lease, and another run would post it again. A longer
    Retry-After is not retried here: the 429 reaches `post`, and the alert goes back to the
    outbox, due when Slack said.
    """

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        wait = _retry_after(response.headers)
        return wait is None or wait <= SLACK_MAX_WAIT_SECONDS

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        wait = _retry_after(response.headers) if response is not None else None
        state.next_attempt_requested = True
        time.sleep(max(0.0, 1.0 if wait is None else wait) + random.random())
        state.increment_current_attempt()


def slack_client(config: SlackConfig) -> WebClient:
    """A WebClient for `config`, retrying rate limits, server and connection errors; its
    waits are capped, so one post ends within `config.longest_post_seconds()`."""
    base_url = str(config.base_url) if config.base_url is not None else WebClient.BASE_URL
    backoff = CappedBackoff()
    handlers = [
        ConnectionErrorRetryHandler(max_retry_count=config.retries, interval_calculator=backoff),
        CappedRateLimitRetryHandler(max_retry_count=config.retries),
        ServerErrorRetryHandler(max_retry_count=config.retries, interval_calculator=backoff),
    ]
    return WebClient(
        token=config.token.get_secret_value(),
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        timeout=config.timeout_seconds,
        retry_handlers=handlers,
    )


def post(
    client: WebClient, channel: str, message: SlackMessage, thread_ts: str | None = None
) -> Posted | Refused:
    """`chat.postMessage` with blocks and the text fallback (a reply with `thread_ts`);
    Slack's answer, classified."""
    answer = _call(
        client,
        lambda: client.chat_postMessage(
            channel=channel, text=message.text, blocks=message.blocks, thread_ts=thread_ts
        ),
    )
    if isinstance(answer, Refused):
        return answer
    return Posted(channel=str(answer.get("channel") or channel), ts=answer.get("ts"))


def update(client: WebClient, channel: str, ts: str, message: SlackMessage) -> Posted | Refused:
    """`chat.update` of the message `ts` in `channel` (an ID); Slack's answer, classified."""
    answer = _call(
        client,
        lambda: client.chat_update(
            channel=channel, ts=ts, text=message.text, blocks=message.blocks
        ),
    )
    return answer if isinstance(answer, Refused) else Posted(channel=channel, ts=ts)


def _call(client: WebClient, request: Callable[[], SlackResponse]) -> SlackResponse | Refused:
    try:
        return request()
    except SlackApiError as error:
        return _refused(error, client.token)
    except (OSError, http.client.HTTPException, SlackClientError) as error:
        # URLError, refused or reset connections, time-outs: Slack (or the way to it) is down.
        text = hide_token(f"cannot reach Slack: {type(error).__name__}: {error}", client.token)
        return Refused(error=text, transient=True)


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
        return Refused(hide_token(f"HTTP {status} from Slack: {detail}".rstrip(": "), token), True)
    return Refused(str(code), transient=False, token=code in TOKEN_ERRORS)


def _retry_after(headers: Mapping[str, object] | None) -> float | None:
    for name, value in (headers or {}).items():
        if name.lower() == "retry-after":
            raw = value[0] if isinstance(value, list) else value
            try:
                return float(str(raw))
            except ValueError:
                return None
    return None


def hide_token(text: str, token: str | None) -> str:
    """Belt and braces: the token never appears in an error we keep or show."""
    return text.replace(token, "***") if token else text
