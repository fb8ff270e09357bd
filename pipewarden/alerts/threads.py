"""One incident, one Slack thread: posting a unit of alerts where it belongs.

A unit is what goes out as one message: the alerts that opened one table's incidents in one run
(one parent listing them), or one alert about incidents that already have a thread (a reply).

- Opening: the parent is posted and recorded on its incidents (`slack_channel`, `slack_ts`)
  at once, in a transaction of its own, so a run that dies before marking the alert sent
  finds the thread on the next try and only updates it in place.
- Anything later about an incident (worse, a reminder, a notice, the recovery): the parent is
  first updated in place with the incidents as they are now, then the alert is posted as a
  reply. An update is idempotent, so a retry after a failed reply repeats nothing.
- A parent that can no longer be updated or replied to (deleted, posted by someone else, its
  channel archived or gone: `GONE_ERRORS`) is replaced: a new parent is posted in the alert's
  channel, recorded on every incident of the old thread, and the incident goes on there.

Slack's other refusals reach the caller as they are (transient: the alert waits in the
outbox; a token problem: the run stops), except a refused update for a reason of its own,
which is logged and does not keep the reply from going out.
"""

import logging
from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from slack_sdk import WebClient

from pipewarden.alerts.slack_client import GONE_ERRORS, Posted, Refused, post, update
from pipewarden.alerts.slack_message import render
from pipewarden.alerts.thread_message import ThreadEntry, render_parent
from pipewarden.config.models import SlackLinks
from pipewarden.records.alerts import OPENED, Alert, opening_alerts
from pipewarden.records.incidents import Incident, incidents_by_id, incidents_of_thread, set_thread

log = logging.getLogger(__name__)


def send_unit(
    engine: sa.Engine,
    client: WebClient,
    channel: str,
    unit: Sequence[Alert],
    links: SlackLinks,
    mentions: Sequence[str],
    now: datetime,
) -> Posted | Refused:
    """Post `unit` (alerts of one table, of one run) where its incidents' thread is."""
    ids = [a.incident_id for a in unit if a.incident_id is not None]
    with engine.connect() as conn:
        incidents = incidents_by_id(conn, ids)
    if not incidents:  # a one-off notice, or an incident no longer recorded: on its own
        return post(client, channel, render(unit[0], links))
    sender = _Thread(engine, client, channel, links, mentions, now)
    thread = next((i.thread for i in incidents if i.thread is not None), None)
    if thread is None:
        parent = sender.new_parent(incidents, continued=False)
        if isinstance(parent, Refused) or unit[0].kind == OPENED:
            return parent
        thread = (parent.channel, parent.ts or "")
    elif unit[0].kind == OPENED:
        # Posted before, but the run died before marking it sent: bring it up to date only.
        return sender.refresh(thread)
    else:
        refreshed = sender.refresh(thread)
        if isinstance(refreshed, Refused):
            return refreshed
        thread = (refreshed.channel, refreshed.ts or "")
    reply = post(client, thread[0], render(unit[0], links), thread_ts=thread[1])
    if isinstance(reply, Refused) and reply.error in GONE_ERRORS:
        # The parent went between the update and the reply: a new one, and the reply there.
        parent = sender.replace(thread)
        if isinstance(parent, Refused):
            return parent
        reply = post(client, parent.channel, render(unit[0], links), thread_ts=parent.ts)
    return reply


class _Thread:
    """Posting and updating the parent of one delivery's thread."""

    def __init__(
        self,
        engine: sa.Engine,
        client: WebClient,
        channel: str,
        links: SlackLinks,
        mentions: Sequence[str],
        now: datetime,
    ) -> None:
        self.engine, self.client, self.channel = engine, client, channel
        self.links, self.mentions, self.now = links, mentions, now

    def refresh(self, thread: tuple[str, str]) -> Posted | Refused:
        """Update the parent in place; replace it when it is gone. The parent it ends at."""
        with self.engine.connect() as conn:
            entries = _entries(conn, incidents_of_thread(conn, *thread))
        if not entries:  # nothing recorded there any more (rows removed by hand)
            return Posted(*thread)
        message = render_parent(entries, self.now, self.links, self.mentions)
        done = update(self.client, thread[0], thread[1], message)
        if isinstance(done, Posted):
            return done
        if done.error in GONE_ERRORS:
            log.info("thread %s in %s: %s; posting a new parent", thread[1], thread[0], done.error)
            return self.replace(thread)
        if done.transient or done.token:
            return done
        log.warning("thread %s in %s not updated: %s", thread[1], thread[0], done.error)
        return Posted(*thread)

    def replace(self, thread: tuple[str, str]) -> Posted | Refused:
        """A new parent for every incident of `thread`, in the alert's channel."""
        with self.engine.connect() as conn:
            incidents = incidents_of_thread(conn, *thread)
        return self.new_parent(incidents, continued=True)

    def new_parent(self, incidents: Sequence[Incident], continued: bool) -> Posted | Refused:
        """Post a parent for `incidents` and record it on them at once."""
        with self.engine.connect() as conn:
            entries = _entries(conn, incidents)
        message = render_parent(entries, self.now, self.links, self.mentions, continued)
        posted = post(self.client, self.channel, message)
        if isinstance(posted, Posted) and posted.ts:
            with self.engine.begin() as conn:
                set_thread(conn, [i.id for i in incidents], posted.channel, posted.ts)
        return posted


def _entries(conn: sa.Connection, incidents: Sequence[Incident]) -> list[ThreadEntry]:
    opened = opening_alerts(conn, [i.id for i in incidents])
    return [ThreadEntry(i, opened.get(i.id)) for i in incidents]
