"""The parent message of an incident's Slack thread: what is failing, since when, how often.

One parent stands for the incidents one run opened for one table (one check, or several
listed together). It is rendered from the incidents as they are now, so posting it again or
updating it in place (`chat.update`) after every reply shows the current status, how long the
incident has lasted, how many failing verdicts it counted and, once every incident in it has
recovered, that it is resolved. The owner's mentions are here, never in the replies.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pipewarden.alerts.links import grafana_link, prefect_link
from pipewarden.alerts.slack_message import (
    EMOJI,
    FIELD_LIMIT,
    HEADER_LIMIT,
    SECTION_LIMIT,
    SlackMessage,
    fit_mrkdwn,
    fit_plain,
)
from pipewarden.config.durations import describe
from pipewarden.config.models import SlackLinks
from pipewarden.records.alerts import Alert
from pipewarden.records.incidents import Incident

#: Incidents listed one by one in a parent; the rest are counted (Block Kit allows 50 blocks).
LISTED = 20
RESOLVED = ":white_check_mark:"


@dataclass(frozen=True)
class ThreadEntry:
    """One incident of a thread, with the alert that opened it (None: never recorded)."""

    incident: Incident
    opening: Alert | None


def render_parent(
    entries: Sequence[ThreadEntry],
    now: datetime,
    links: SlackLinks | None = None,
    mentions: Sequence[str] = (),
    continued: bool = False,
) -> SlackMessage:
    """The parent message of the thread of `entries` (one table's incidents), as of `now`.

    `continued`: an earlier parent can no longer be updated (deleted, its channel archived),
    so this one says the incident goes on here.
    """
    incidents = [e.incident for e in entries]
    table = incidents[0].table_name
    open_ = [i for i in incidents if i.closed_at is None]
    header = fit_plain(_header(table, incidents, open_), HEADER_LIMIT)
    status = _status(incidents, open_, now)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        _section(status),
    ]
    if continued:
        note = "The earlier message of this incident can no longer be updated; it goes on here."
        blocks.append(_context(fit_mrkdwn(note, SECTION_LIMIT)))
    for entry in entries[:LISTED]:
        blocks.append(_section(_entry_text(entry, now, single=len(entries) == 1)))
    if len(entries) > LISTED:
        blocks.append(_section(f"… and {len(entries) - LISTED} more checks of {table}"))
    parts = [f"<{url}|{name}>" for name, url in _links(entries, links)]
    blocks.append(_context(" · ".join([*parts, _ids(entries)])))
    owners = " ".join(mentions)  # checked at load: Slack mentions, nothing to escape
    if owners:
        blocks.append(_context(f"Owners: {owners}"))
    plain = f"{header}: {_summary(entries)}. {_plain_status(incidents, open_, now)}"
    text = fit_mrkdwn(plain, SECTION_LIMIT - 500)
    return SlackMessage(text=f"{text} {owners}".rstrip(), blocks=blocks)


def _header(table: str, incidents: list[Incident], open_: list[Incident]) -> str:
    if len(incidents) == 1:
        incident = incidents[0]
        where = f"{table} · {incident.check}"
        if not open_:
            return f"{RESOLVED} {where}: resolved"
        return f"{EMOJI.get(incident.status, ':warning:')} {where}: {incident.status}"
    if not open_:
        return f"{RESOLVED} {table}: {len(incidents)} checks resolved"
    worst = max(open_, key=lambda i: i.severity.column)
    emoji = EMOJI.get(worst.status, ":warning:")
    return f"{emoji} {table}: {len(open_)} of {len(incidents)} checks failing"


def _status(incidents: list[Incident], open_: list[Incident], now: datetime) -> str:
    """One line: open or resolved, for how long, how many failing verdicts."""
    opened = min(i.opened_at for i in incidents)
    fired = sum(i.occurrences for i in incidents)
    times = "1 time" if fired == 1 else f"{fired} times"
    since = opened.strftime("%Y-%m-%d %H:%M UTC")
    if open_:
        return f"*Open* for {describe(now - opened)} (since {since}) · fired {times}"
    ended = max(i.closed_at or now for i in incidents)
    return f"*Resolved* after {describe(ended - opened)} (since {since}) · fired {times}"


def _plain_status(incidents: list[Incident], open_: list[Incident], now: datetime) -> str:
    return _status(incidents, open_, now).replace("*", "")


def _summary(entries: Sequence[ThreadEntry]) -> str:
    """What the notification says: the reason of one incident, the checks of several."""
    if len(entries) == 1:
        opening = entries[0].opening
        return (opening.evidence.reason if opening else None) or "no reason recorded"
    return ", ".join(e.incident.check for e in entries)


def _entry_text(entry: ThreadEntry, now: datetime, single: bool) -> str:
    incident, opening = entry.incident, entry.opening
    reason = opening.evidence.reason if opening is not None else None
    why = fit_mrkdwn(reason or "no reason recorded", FIELD_LIMIT)
    if incident.closed_at is not None:
        state = f"{RESOLVED} recovered after {describe(incident.closed_at - incident.opened_at)}"
    else:
        state = f"{EMOJI.get(incident.status, ':warning:')} {fit_mrkdwn(incident.status, 30)}"
    seen = incident.occurrences
    count = "1 failing verdict" if seen == 1 else f"{seen} failing verdicts"
    if single:
        return f"{state} · {count}\n{why}"
    return f"*{fit_mrkdwn(incident.check, 300)}*: {state} · {count}\n{why}"


def _links(entries: Sequence[ThreadEntry], links: SlackLinks | None) -> list[tuple[str, str]]:
    """The Prefect run that opened the thread, and each check kind's dashboard panel once."""
    links = links or SlackLinks()
    found: list[tuple[str, str]] = []
    first = next((e.opening for e in entries if e.opening is not None), None)
    if first is not None:
        prefect = prefect_link(links, first.flow_run_id, first.details.get("flow_run_url"))
        if prefect:
            found.append(("Prefect run", prefect))
    seen: set[str] = set()
    for entry in entries:
        incident = entry.incident
        url = grafana_link(
            links, incident.table_name, incident.check, incident.opened_at, incident.closed_at
        )
        if url and url.split("&from=")[0] not in seen:
            seen.add(url.split("&from=")[0])
            found.append((f"Grafana: {incident.check}" if len(entries) > 1 else "Grafana", url))
    return found[:10]


def _ids(entries: Sequence[ThreadEntry]) -> str:
    """Where to look in pipewarden: `pipewarden alerts --all` lists these ids."""
    alerts = [str(e.opening.id) for e in entries if e.opening is not None][:LISTED]
    incidents = [str(e.incident.id) for e in entries][:LISTED]
    said = []
    if alerts:
        said.append(f"pipewarden alert{'s' if len(alerts) > 1 else ''} {', '.join(alerts)}")
    said.append(f"incident{'s' if len(incidents) > 1 else ''} {', '.join(incidents)}")
    return " · ".join(said)


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}
