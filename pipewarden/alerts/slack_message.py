"""An alert as a Slack message: Block Kit blocks that say why, and the plain-text fallback.

Everything quoted from a check (reasons, methods, error text) is escaped for mrkdwn and cut to
Block Kit's limits, so a long Pandera or driver message can never make Slack refuse the alert.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pipewarden.alerts.links import grafana_link, prefect_link
from pipewarden.config.durations import describe
from pipewarden.config.models import SlackLinks
from pipewarden.records.alerts import NOTICE, OPENED, RECOVERED, REMINDER, WORSE, Alert

#: Block Kit's limits: section text, section field, header text; `text` kept to the same.
SECTION_LIMIT, FIELD_LIMIT, HEADER_LIMIT = 3000, 2000, 150
EMOJI = {
    "error": ":red_circle:",
    "failed": ":red_circle:",
    "anomaly": ":large_purple_circle:",
    "differences": ":large_orange_circle:",
    "warn": ":large_yellow_circle:",
}
TITLE = {OPENED: "", WORSE: "worse, ", RECOVERED: "recovered", NOTICE: "", REMINDER: "still "}


@dataclass(frozen=True)
class SlackMessage:
    """What `chat.postMessage` gets: `text` (notifications, fallback) and `blocks`."""

    text: str
    blocks: list[dict[str, Any]]


def render(alert: Alert, links: SlackLinks | None = None) -> SlackMessage:
    """The message for one alert: what failed, why, the numbers, and where to look."""
    header = fit_plain(_header(alert), HEADER_LIMIT)
    why = _why(alert)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {"type": "section", "text": {"type": "mrkdwn", "text": fit_mrkdwn(why, SECTION_LIMIT)}},
    ]
    fields = _fields(alert)
    if fields:
        blocks.append(
            {
                "type": "section",
                "fields": [
                    {"type": "mrkdwn", "text": f"*{name}*\n{fit_mrkdwn(value, FIELD_LIMIT - 40)}"}
                    for name, value in fields
                ],
            }
        )
    context = {"type": "mrkdwn", "text": _context(alert, links)}
    blocks.append({"type": "context", "elements": [context]})
    # `text` is mrkdwn too (what notifications show): escaped, or `<!channel>` would notify.
    return SlackMessage(text=fit_mrkdwn(f"{header}: {why}", SECTION_LIMIT), blocks=blocks)


def _header(alert: Alert) -> str:
    evidence = alert.evidence
    where = f"{evidence.table_name} · {evidence.check}"
    if alert.kind == RECOVERED:
        return f":white_check_mark: {where} recovered"
    if alert.kind == NOTICE:
        return f":information_source: {where}"
    emoji = EMOJI.get(evidence.status, ":warning:")
    return f"{emoji} {where}: {TITLE[alert.kind]}{evidence.status}"


def _why(alert: Alert) -> str:
    reason = alert.evidence.reason or "no reason recorded"
    since = alert.details.get("since")
    if alert.kind not in (RECOVERED, NOTICE, REMINDER) or not since:
        return reason
    span = describe(alert.created_at - datetime.fromisoformat(since))
    seen = alert.details.get("seen", 1)
    verdicts = "1 failing verdict" if seen == 1 else f"{seen} failing verdicts"
    if alert.kind == RECOVERED:
        return f"Passing again after {span} ({verdicts}). Now: {reason}"
    if alert.kind == REMINDER:
        return f"Still failing after {span} ({verdicts}): {reason}"
    return f"Open for {span} ({verdicts}); {reason}"  # a notice that closed an incident


def _fields(alert: Alert) -> list[tuple[str, str]]:
    if alert.kind in (RECOVERED, NOTICE):
        return []
    evidence = alert.evidence
    seconds = evidence.check == "freshness" or evidence.check.endswith("_seconds")
    fields = [("Status", evidence.status)]
    if evidence.observed is not None:
        fields.append(("Observed", _value(evidence.observed, seconds)))
    if evidence.expected_low is not None or evidence.expected_high is not None:
        low, high = (_value(v, seconds) for v in (evidence.expected_low, evidence.expected_high))
        fields.append(("Expected", f"{low} – {high}"))
    if evidence.method:
        fields.append(("Method", evidence.method))
    if alert.kind == WORSE and alert.details.get("since"):
        fields.append(("Failing since", alert.details["since"][:16].replace("T", " ") + " UTC"))
    return fields


def _context(alert: Alert, links: SlackLinks | None) -> str:
    parts = [f"<{url}|{name}>" for name, url in alert_links(alert, links)]
    parts.append(f"pipewarden alert {alert.id}")
    if alert.incident_id is not None:
        parts.append(f"incident {alert.incident_id}")
    return " · ".join(parts)


def alert_links(alert: Alert, links: SlackLinks | None) -> list[tuple[str, str]]:
    """(name, URL) of the Prefect run that found `alert` and of its dashboard panel."""
    links = links or SlackLinks()
    found = []
    prefect = prefect_link(links, alert.flow_run_id, alert.details.get("flow_run_url"))
    if prefect:
        found.append(("Prefect run", prefect))
    since = alert.details.get("since")
    start = datetime.fromisoformat(since) if since else alert.created_at
    end = alert.created_at if alert.kind in (RECOVERED, NOTICE) else None
    evidence = alert.evidence
    grafana = grafana_link(links, evidence.table_name, evidence.check, start, end)
    if grafana:
        found.append(("Grafana", grafana))
    return found


def _value(value: float | None, seconds: bool) -> str:
    if value is None:
        return "-"
    if not math.isfinite(value):  # nan, inf: a detector's or a driver's; no digits to group
        return str(value)
    text = f"{value:,.0f}" if abs(value) >= 100 or value == int(value) else f"{value:.3g}"
    if seconds and value >= 60:
        return f"{text} s ({describe(timedelta(seconds=value))})"
    return f"{text} s" if seconds else text


def fit_plain(text: str, limit: int) -> str:
    """`text` cut to `limit` characters, an ellipsis marking the cut."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fit_mrkdwn(text: str, limit: int) -> str:
    """`text` escaped for mrkdwn (&, <, > as Slack asks) and cut to `limit` characters, never
    through the middle of an escape."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if len(escaped) <= limit:
        return escaped
    cut = escaped[: limit - 1]
    amp = cut.rfind("&", max(0, len(cut) - 4))
    if amp != -1 and ";" not in cut[amp:]:
        cut = cut[:amp]
    return cut + "…"
