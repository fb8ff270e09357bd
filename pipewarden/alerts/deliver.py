"""Delivering the outbox to Slack, oldest first, in order per channel, losing nothing.

For each undelivered alert, oldest first: resolve its channel (the table owner's, else the
default), skip it if an earlier alert of that channel is still waiting (order per channel), take
it with a claim, post it, and record the outcome with its `alert_outcome` metric in one
transaction (the metric in a savepoint, so it cannot undo the outcome). When Slack cannot be
reached or keeps answering 429/5xx after the client's retries, the alert goes back to the
outbox with a later `next_attempt_at` (doubling from a minute up to an hour, at least
Retry-After) and the run stops: the rest wait for the next run, in order. A permanent refusal
marks the alert failed with Slack's error; one about the token leaves it in the outbox (the
token is at fault, not the alert) and stops the run, as a token that is not set does; so does an
alert whose claim was lost (the run outlived the lease), whose outcome is then the other run's.
An alert that cannot be rendered or posted for a reason of our own fails alone, with the error.
`pipewarden alerts send --retry-failed` puts failed alerts back once fixed.
"""

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from slack_sdk import WebClient

from pipewarden.alerts.slack_client import Posted, Refused, hide_token, slack_client
from pipewarden.alerts.slack_message import fit_plain
from pipewarden.alerts.threads import send_unit
from pipewarden.config import PipewardenConfig
from pipewarden.config.models import SlackLinks
from pipewarden.config.owners import owner_mentions
from pipewarden.config.urls import redact_secrets
from pipewarden.db.engines import cached_engine
from pipewarden.measurements.outcomes import outcome_points
from pipewarden.records.alerts import (
    OPENED,
    PENDING,
    SENDING,
    Alert,
    Claim,
    claim,
    mark_failed,
    mark_retry,
    mark_sent,
    undelivered,
)
from pipewarden.records.metrics import write_metrics
from pipewarden.records.migrate import ensure_tables

log = logging.getLogger(__name__)

#: How long a claimed alert is left to its delivery run before another run may take it.
LEASE = timedelta(minutes=10)
FIRST_BACKOFF, MAX_BACKOFF = timedelta(minutes=1), timedelta(hours=1)


@dataclass
class DeliveryReport:
    """What one delivery run did, by alert id."""

    configured: bool = True
    sent: list[int] = field(default_factory=list)
    retrying: list[int] = field(default_factory=list)
    failed: list[int] = field(default_factory=list)
    #: Not tried in this run: not due yet, behind an earlier alert of its channel, or after a
    #: stop.
    waiting: list[int] = field(default_factory=list)
    stopped: str | None = None

    def as_dict(self) -> dict[str, object]:
        return {
            "configured": self.configured,
            "sent": len(self.sent),
            "retrying": len(self.retrying),
            "failed": len(self.failed),
            "waiting": len(self.waiting),
            "stopped": self.stopped,
        }


def deliver_pending(
    config: PipewardenConfig,
    client: WebClient | None = None,
    now: datetime | None = None,
    limit: int = 500,
) -> DeliveryReport:
    """Send what waits in the outbox; without a `slack:` section, only count it."""
    engine = cached_engine(config.warehouse.url, config.timeouts.engine())
    ensure_tables(engine)
    with engine.connect() as conn:
        queue = undelivered(conn, limit)
    if config.slack is None:
        return DeliveryReport(configured=False, waiting=[a.id for a in queue if a.id])
    slack = config.slack
    if slack.token_problem is not None:  # nothing to try: every alert waits for a token
        stopped = f"no usable Slack token: {slack.token_problem}"
        return DeliveryReport(waiting=[a.id for a in queue if a.id], stopped=stopped)
    client = client or slack_client(slack)
    links = slack.links
    if links.grafana is None and config.grafana is not None:
        links = links.model_copy(update={"grafana": config.grafana.url})
    report = DeliveryReport()
    blocked: set[str] = set()
    done: set[int] = set()
    for alert in queue:
        assert alert.id is not None
        if alert.id in done:  # went out in the message of its run's group
            continue
        channel = alert.channel or slack.default_channel
        at = now or datetime.now(UTC)
        if report.stopped is not None or channel in blocked or not _due(alert, at):
            blocked.add(channel)
            report.waiting.append(alert.id)
            continue
        unit: list[tuple[Alert, Claim]] = []
        for member in _group(alert, queue, slack.default_channel, done, at):
            assert member.id is not None
            with engine.begin() as conn:
                held = claim(conn, member.id, at, at + LEASE)
            if held is not None:
                unit.append((member, held))
                done.add(member.id)
        if not unit:  # another delivery run holds it: the channel's order is theirs now
            blocked.add(channel)
            report.waiting.append(alert.id)
            continue
        mentions = owner_mentions(config.owner_of(alert.evidence.table_name))
        sent = [a for a, _ in unit]
        outcome = _post(engine, client, channel, sent, links, mentions, at)
        for member, held in unit:
            _record(engine, member, held, channel, outcome, now or datetime.now(UTC), report)
    return report


def _group(
    alert: Alert, queue: list[Alert], default_channel: str, done: set[int], at: datetime
) -> list[Alert]:
    """What goes out with `alert` as one message: the incidents its run opened for its table
    in its channel, due and not yet taken (itself first); any other alert alone."""
    if alert.kind != OPENED or alert.batch is None:
        return [alert]
    channel = alert.channel or default_channel
    return [alert] + [
        a
        for a in queue
        if a.id != alert.id
        and a.id not in done
        and a.kind == OPENED
        and a.batch == alert.batch
        and a.evidence.table_name == alert.evidence.table_name
        and (a.channel or default_channel) == channel
        and _due(a, at)
    ]


def undelivered_warning(counts: Mapping[str, object]) -> str | None:
    """What a stage says, once, about the alerts its delivery left: why they wait, or None.

    `counts` is `DeliveryReport.as_dict()`. Without a `slack:` section alerts wait by choice,
    and with none waiting there is nothing to say.
    """
    if not counts.get("configured"):
        return None
    waiting = int(str(counts.get("retrying") or 0)) + int(str(counts.get("waiting") or 0))
    failed = int(str(counts.get("failed") or 0))
    parts = []
    if counts.get("stopped") and waiting:
        parts.append(f"alerts not delivered, {waiting} wait in the outbox: {counts['stopped']}")
    if failed:
        parts.append(f"{failed} alerts refused by Slack (`pipewarden alerts` shows why)")
    return "; ".join(parts) or None


def _post(
    engine: sa.Engine,
    client: WebClient,
    channel: str,
    unit: list[Alert],
    links: SlackLinks,
    mentions: list[str],
    at: datetime,
) -> Posted | Refused:
    """Render and post one unit of alerts in its thread. A failure of our own (a value the
    message cannot show, a bug) fails these alerts with its error, not the run: left
    `sending`, they would be taken again after every lease, fail again, and hold back their
    channel for good."""
    try:
        return send_unit(engine, client, channel, unit, links, mentions, at)
    except Exception as error:  # noqa: BLE001 - anything, so that the other alerts go out
        text = redact_secrets(hide_token(f"{type(error).__name__}: {error}", client.token))
        log.warning("alert %s could not be rendered or posted: %s", unit[0].id, text)
        return Refused(error=fit_plain(text, 500), transient=False)


def _due(alert: Alert, at: datetime) -> bool:
    if alert.state == SENDING:
        return alert.claimed_until is None or alert.claimed_until < at
    return alert.state == PENDING and (alert.next_attempt_at is None or alert.next_attempt_at <= at)


def _record(
    engine: sa.Engine,
    alert: Alert,
    held: Claim,
    channel: str,
    outcome: Posted | Refused,
    at: datetime,
    report: DeliveryReport,
) -> None:
    """The alert's new state and its delivery metric, in one transaction, while the claim
    holds. The metric is written in a savepoint: failing, it is logged and lost, never the
    outcome (a `sent` rolled back would be posted again)."""
    assert alert.id is not None
    with engine.begin() as conn:
        if isinstance(outcome, Posted):
            status = "delivered"
            kept = mark_sent(conn, held, at, outcome.channel, outcome.ts)
        elif outcome.transient:
            status = "retrying"
            next_attempt = at + _backoff(held.attempt, outcome.retry_after)
            kept = mark_retry(conn, held, outcome.error, next_attempt)
        elif outcome.token:
            # The token is at fault, not the alert: it waits, due as soon as a token works.
            status = "retrying"
            kept = mark_retry(conn, held, outcome.error, at)
        else:
            status = "failed"
            kept = mark_failed(conn, held, outcome.error)
        if not kept:
            # The lease ended while we posted and another run took the alert: its outcome
            # stands, and this run, too slow to keep the channel's order, stops.
            report.stopped = f"lost the claim of alert {alert.id} (lease ended) after: {status}"
            log.warning("alert %s to %s: %s, but its claim was lost", alert.id, channel, status)
            return
        labels = {"channel": channel, "check": alert.evidence.check, "event": alert.kind}
        values = {"attempts": float(held.attempt)}
        points = outcome_points(alert.evidence.table_name, "alert", status, values, at, **labels)
        try:
            with conn.begin_nested():
                write_metrics(conn, points)
        except Exception as failed:  # noqa: BLE001 - the driver's own errors too (COPY)
            log.warning("alert %s: its delivery metrics were not written: %s", alert.id, failed)
    if isinstance(outcome, Posted):
        report.sent.append(alert.id)
    elif outcome.transient:
        report.retrying.append(alert.id)
        report.stopped = f"Slack did not take alert {alert.id}: {outcome.error}"
    elif outcome.token:
        report.retrying.append(alert.id)
        report.stopped = f"Slack refused the token: {outcome.error}"
    else:
        report.failed.append(alert.id)
    error = outcome.error if isinstance(outcome, Refused) else ""
    log.info("alert %s to %s: %s %s", alert.id, channel, status, error)


def _backoff(attempts: int, retry_after: float | None) -> timedelta:
    """A minute, doubling per failed attempt, at most an hour, never less than Retry-After."""
    delay = min(MAX_BACKOFF, FIRST_BACKOFF * 2 ** min(max(0, attempts - 1), 12))
    if retry_after is not None:
        delay = max(delay, timedelta(seconds=retry_after))
    return delay
