"""Alerts as Block Kit: they say why, link where to look, and always fit Slack's limits."""

from datetime import timedelta

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.alerts.slack_message import fit_mrkdwn, render
from pipewarden.config.models import SlackLinks
from pipewarden.records.alerts import OPENED, RECOVERED, SENT, Alert
from pipewarden.records.evidence import Evidence
from tests.alerts.support import NOW, alert_config, finding, outbox, raise_now
from tests.fixtures.slack import FakeSlack, block_problem


def _alert(kind: str = OPENED, details: dict[str, object] | None = None, **fields: object) -> Alert:
    evidence: dict[str, object] = {
        "table_name": "events",
        "check": "freshness",
        "status": "error",
        "observed": 14_400.0,
        "expected_low": 0.0,
        "expected_high": 3600.0,
        "method": "sla: age > warn_after warns, age > error_after errs",
        "reason": "newest row 4h 00m old, over error_after 2h 00m",
    }
    return Alert(
        created_at=NOW,
        kind=kind,
        evidence=Evidence(**{**evidence, **fields}),  # type: ignore[arg-type]
        id=7,
        incident_id=3,
        details=details or {},
        flow_run_id="0b6f8e7a-1111-2222-3333-444455556666",
    )


def test_the_message_says_what_why_and_where_to_look() -> None:
    links = SlackLinks(
        prefect_ui="https://prefect.internal/", grafana="https://grafana.internal/d/pw?orgId=1"
    )
    message = render(_alert(), links)
    hour_before_ms = int((NOW - timedelta(hours=1)).timestamp() * 1000)
    header, why, facts, context = message.blocks
    assert header["text"]["text"] == ":red_circle: events · freshness: error"
    assert why["text"]["text"] == "newest row 4h 00m old, over error_after 2h 00m"
    assert [f["text"] for f in facts["fields"]] == [
        "*Status*\nerror",
        "*Observed*\n14,400 s (4h 00m)",
        "*Expected*\n0 s – 3,600 s (1h 00m)",
        "*Method*\nsla: age &gt; warn_after warns, age &gt; error_after errs",
    ]
    assert context["elements"][0]["text"] == (
        "<https://prefect.internal/runs/flow-run/0b6f8e7a-1111-2222-3333-444455556666"
        "|Prefect run> · <https://grafana.internal/d/pipewarden-freshness?orgId=1&var-table=events"
        f"&viewPanel=2&from={hour_before_ms}&to=now|Grafana> · pipewarden alert 7 · incident 3"
    )
    assert message.text.startswith(":red_circle: events · freshness: error: newest row 4h")


def test_a_recovery_says_how_long_it_failed() -> None:
    since = (NOW - timedelta(hours=3, minutes=5)).isoformat()
    recovered = _alert(kind=RECOVERED, status="ok", details={"since": since, "seen": 13})
    message = render(recovered)
    assert message.blocks[0]["text"]["text"] == ":white_check_mark: events · freshness recovered"
    assert message.blocks[1]["text"]["text"].startswith(
        "Passing again after 3h 05m (13 failing verdicts). Now:"
    )
    assert len(message.blocks) == 3  # no numbers to show; no links configured


def test_long_text_is_cut_to_block_kit_limits_and_markup_escaped() -> None:
    huge = _alert(
        table_name="t" * 200,
        reason="<b>" + "x" * 10_000,
        method="m" * 5000,
        check="drift:" + "c" * 290,
    )
    message = render(huge)
    assert block_problem(message.blocks) is None
    assert len(message.text) <= 3000
    assert message.blocks[1]["text"]["text"].startswith("&lt;b&gt;xxx")
    assert message.blocks[1]["text"]["text"].endswith("…")
    uncut = [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}]
    assert block_problem(uncut) is not None  # the local Slack refuses what Slack refuses


def test_an_escape_is_never_cut_in_half() -> None:
    for length in range(2, 12):
        cut = fit_mrkdwn("&" * 50, length)
        assert len(cut) <= length and cut.endswith("…")
        assert cut[:-1].replace("&amp;", "") == ""


def test_a_huge_reason_is_still_delivered(warehouse_url: str, fake_slack: FakeSlack) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    failures = "; ".join(f"email: not an address: 'x{i}@'" for i in range(2000))
    raise_now(config, finding(check="sync", status="failed", reason=failures))
    report = deliver_pending(config, now=NOW)
    assert len(report.sent) == 1 and [a.state for a in outbox(config)] == [SENT]


def test_the_text_fallback_is_escaped_too() -> None:
    message = render(_alert(reason="<!channel> look at <https://x|this> & that"))
    assert "<!channel>" not in message.text and "<https://" not in message.text
    assert "&lt;!channel&gt; look at &lt;https://x|this&gt; &amp; that" in message.text


def test_values_that_are_not_numbers_are_shown_as_text() -> None:
    message = render(_alert(observed=float("nan"), expected_low=float("-inf")))
    facts = dict(f["text"].split("\n") for f in message.blocks[2]["fields"])
    assert facts["*Observed*"] == "nan"
    assert facts["*Expected*"].startswith("-inf – 3,600 s")
