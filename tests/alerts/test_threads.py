"""One incident, one Slack thread, against the local Slack: the parent is updated in place,
everything later is a reply, a parent that is gone is replaced, and nothing is lost."""

from datetime import timedelta
from typing import Any

from slack_sdk import WebClient

from pipewarden.alerts.deliver import LEASE, DeliveryReport, deliver_pending
from pipewarden.alerts.findings import PASSING
from pipewarden.alerts.slack_client import slack_client
from pipewarden.alerts.threads import send_unit
from pipewarden.config import PipewardenConfig
from pipewarden.db.engines import cached_engine
from pipewarden.records.alerts import FAILED, PENDING, SENT, claim
from tests.alerts.support import NOW, alert_config, all_incidents, finding, outbox, raise_now
from tests.fixtures.slack import TOKEN, FakeSlack


def thread_of(slack: FakeSlack, channel: str, ts: str) -> list[dict[str, Any]]:
    """The thread as Slack's conversations.replies gives it: the parent, then the replies."""
    web = WebClient(token=TOKEN, base_url=slack.url, timeout=10)
    return list(web.conversations_replies(channel=channel, ts=ts)["messages"])


def opened(config: PipewardenConfig) -> None:
    """A warn opens the orders freshness incident at NOW, and its parent is posted."""
    raise_now(config, finding(status="warn"), now=NOW)
    deliver_pending(config, now=NOW)


def worsened(config: PipewardenConfig, after: timedelta = timedelta(hours=1)) -> DeliveryReport:
    """The incident turns to error `after` the opening; the delivery of that moment."""
    raise_now(config, finding(status="error"), now=NOW + after)
    return deliver_pending(config, now=NOW + after)


def test_an_incident_is_one_thread_from_opening_to_recovery(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(config, finding(status="warn", reason="newest row 40m old"), now=NOW)
    deliver_pending(config, now=NOW)
    raise_now(config, finding(status="warn"), now=NOW + timedelta(minutes=15))  # a quiet repeat
    assert deliver_pending(config, now=NOW + timedelta(minutes=15)).sent == []
    raise_now(config, finding(status="error"), now=NOW + timedelta(minutes=30))  # worse
    deliver_pending(config, now=NOW + timedelta(minutes=30))
    passing = finding(status="ok", verdict=PASSING, reason="newest row 2m old")
    raise_now(config, passing, now=NOW + timedelta(hours=2))
    deliver_pending(config, now=NOW + timedelta(hours=2))

    (parent,) = fake_slack.workspace.top_level("#shop-data")  # one message in the channel
    (incident,) = all_incidents(config)
    assert incident.thread == ("C0SHOP", parent.ts)
    messages = thread_of(fake_slack, "C0SHOP", parent.ts)
    texts = [m["text"] for m in messages]
    assert len(messages) == 3 and messages[0]["reply_count"] == 2
    assert "orders · freshness: resolved" in texts[0] and "edited" in messages[0]
    assert "Resolved after 2h 00m" in texts[0] and "fired 3 times" in texts[0]
    assert "orders · freshness: worse, error" in texts[1]
    assert "recovered" in texts[2] and "after 2h 00m (3 failing verdicts)" in texts[2]
    # The parent was updated before each reply, showing the status of the moment.
    first_update, second_update = fake_slack.updated
    assert first_update["ts"] == parent.ts and "freshness: error" in first_update["text"]
    assert "Open for 30m" in first_update["text"] and "fired 3 times" in first_update["text"]
    assert [a.state for a in outbox(config)] == [SENT] * 3
    assert [a.slack_ts for a in outbox(config)][0] == parent.ts


def test_a_deleted_parent_is_replaced_and_the_incident_goes_on_there(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    opened(config)
    (first,) = all_incidents(config)
    assert first.slack_ts is not None
    fake_slack.delete("#shop-data", first.slack_ts)  # someone tidies the channel

    report = worsened(config)

    assert len(report.sent) == 1 and report.failed == []
    (parent,) = fake_slack.workspace.top_level("#shop-data")
    assert parent.ts != first.slack_ts and "goes on here" in str(parent.blocks)
    (incident,) = all_incidents(config)
    assert incident.thread == ("C0SHOP", parent.ts)  # recorded: later replies go there
    worse = thread_of(fake_slack, "C0SHOP", parent.ts)[1:]
    assert [("worse, error" in m["text"]) for m in worse] == [True]

    raise_now(config, finding(status="ok", verdict=PASSING), now=NOW + timedelta(hours=2))
    deliver_pending(config, now=NOW + timedelta(hours=2))
    assert len(fake_slack.workspace.top_level("#shop-data")) == 1  # no third parent
    assert len(thread_of(fake_slack, "C0SHOP", parent.ts)) == 3
    assert "resolved" in fake_slack.updated[-1]["text"]


def test_a_parent_posted_by_someone_else_is_replaced_not_refused(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    """cant_update_message: a parent the bot cannot edit is replaced like a deleted one."""
    config = alert_config(warehouse_url, fake_slack.url)
    opened(config)
    fake_slack.fail(error="cant_update_message", method="chat.update")
    assert len(worsened(config).sent) == 1
    first, second = fake_slack.workspace.top_level("#shop-data")
    assert all_incidents(config)[0].slack_ts == second.ts
    assert len(fake_slack.workspace.thread("#shop-data", second.ts)) == 1


def test_an_archived_channel_moves_the_incident_to_the_owners_new_channel(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    opened(config)
    fake_slack.archive("#shop-data")
    # The team moved to another channel.
    moved = alert_config(warehouse_url, fake_slack.url, orders_owner="#crm-data")

    assert len(worsened(moved).sent) == 1

    (parent,) = fake_slack.workspace.top_level("#crm-data")
    assert all_incidents(moved)[0].thread == ("C0CRM", parent.ts)
    assert len(fake_slack.workspace.thread("#crm-data", parent.ts)) == 1


def test_an_archived_channel_of_its_own_fails_the_alert_with_slacks_error(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    opened(config)
    fake_slack.archive("#shop-data")
    report = worsened(config)
    assert len(report.failed) == 1 and report.stopped is None
    kept = outbox(config)[-1]
    assert (kept.state, kept.last_error) == (FAILED, "is_archived")  # kept, and says why


def test_a_rate_limited_update_waits_and_the_reply_goes_out_once(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, retries=0)
    opened(config)
    raise_now(config, finding(status="error"), now=NOW + timedelta(minutes=5))
    fake_slack.fail(429, method="chat.update", Retry_After="120")

    report = deliver_pending(config, now=NOW + timedelta(minutes=5))

    assert report.sent == [] and len(report.retrying) == 1 and "ratelimited" in str(report.stopped)
    worse = outbox(config)[-1]
    assert worse.state == PENDING and worse.next_attempt_at == NOW + timedelta(minutes=7)
    parent_ts = all_incidents(config)[0].slack_ts
    assert parent_ts is not None and fake_slack.workspace.thread("#shop-data", parent_ts) == []
    later = deliver_pending(config, now=NOW + timedelta(minutes=8))
    assert later.sent == [worse.id]
    assert len(fake_slack.workspace.thread("#shop-data", parent_ts)) == 1
    assert len(fake_slack.workspace.top_level("#shop-data")) == 1


def test_a_rate_limit_within_the_retries_is_waited_for_by_the_client(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, retries=1)
    opened(config)
    raise_now(config, finding(status="error"), now=NOW + timedelta(minutes=5))
    fake_slack.fail(429, method="chat.update", Retry_After="1")
    assert len(deliver_pending(config, now=NOW + timedelta(minutes=5)).sent) == 1
    updates = [s.status for s in fake_slack.seen if s.path == "/api/chat.update"]
    assert updates == [429, 200]


def _die_after_posting(config: Any, alert_id: int, at: Any) -> None:
    """A delivery run that claims the alert, posts it, and dies before marking it sent."""
    engine = cached_engine(config.warehouse.url)
    with engine.begin() as conn:
        assert claim(conn, alert_id, at, at + LEASE)
    (alert,) = [a for a in outbox(config) if a.id == alert_id]
    client = slack_client(config.slack)
    send_unit(engine, client, "#shop-data", [alert], config.slack.links, [], at)


def test_a_run_that_dies_after_posting_the_parent_does_not_post_it_again(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    (opened,) = raise_now(config, finding(status="warn"), now=NOW).alerts
    assert opened.id is not None
    _die_after_posting(config, opened.id, NOW)
    assert deliver_pending(config, now=NOW + timedelta(minutes=1)).sent == []  # leased

    after_lease = NOW + LEASE + timedelta(minutes=1)
    assert deliver_pending(config, now=after_lease).sent == [opened.id]
    assert len(fake_slack.posted) == 1  # the parent was recorded at once: only updated
    assert len(fake_slack.updated) == 1
    (alert,) = outbox(config)
    assert (alert.state, alert.attempts) == (SENT, 2)
    assert alert.slack_ts == all_incidents(config)[0].slack_ts


def test_a_run_that_dies_after_posting_a_reply_posts_it_again_at_least_once(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    opened(config)
    (worse,) = raise_now(config, finding(status="error"), now=NOW + timedelta(minutes=5)).alerts
    assert worse.id is not None
    _die_after_posting(config, worse.id, NOW + timedelta(minutes=5))

    after_lease = NOW + LEASE + timedelta(minutes=6)
    assert deliver_pending(config, now=after_lease).sent == [worse.id]
    parent_ts = all_incidents(config)[0].slack_ts
    assert parent_ts is not None
    replies = fake_slack.workspace.thread("#shop-data", parent_ts)
    assert len(replies) == 2 and replies[0].text == replies[1].text  # at least once: twice
    assert len(fake_slack.workspace.top_level("#shop-data")) == 1
    assert [a.state for a in outbox(config)] == [SENT, SENT]


def test_three_failing_checks_of_one_run_are_one_message_and_one_thread(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(
        config,
        finding("orders", "freshness", reason="newest row 5h old"),
        finding("orders", "sync", status="failed", reason="connection refused"),
        finding("orders", "null_rate:email", status="warn", reason="12% NULL"),
        finding("customers", "freshness", reason="newest row 9h old"),
        now=NOW,
    )
    report = deliver_pending(config, now=NOW)
    assert len(report.sent) == 4
    (orders,) = fake_slack.workspace.top_level("#shop-data")
    assert len(fake_slack.workspace.top_level("#crm-data")) == 1  # another table: its own
    assert "orders: 3 of 3 checks failing" in orders.text
    listed = str(orders.blocks)
    assert all(s in listed for s in ("newest row 5h old", "connection refused", "12% NULL"))
    threads = {i.table_name + " " + i.check: i.slack_ts for i in all_incidents(config)}
    assert {threads[f"orders {c}"] for c in ("freshness", "sync", "null_rate:email")} == {orders.ts}

    raise_now(
        config,
        finding("orders", "sync", status="ok", verdict=PASSING),
        now=NOW + timedelta(hours=1),
    )
    deliver_pending(config, now=NOW + timedelta(hours=1))
    (reply,) = fake_slack.workspace.thread("#shop-data", orders.ts)
    assert "orders · sync recovered" in reply.text
    assert "orders: 2 of 3 checks failing" in fake_slack.updated[-1]["text"]
    assert len(fake_slack.workspace.top_level("#shop-data")) == 1


def test_alerts_of_separate_runs_are_not_grouped(warehouse_url: str, fake_slack: FakeSlack) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    raise_now(config, finding("orders", "freshness"), now=NOW)
    raise_now(config, finding("orders", "sync", status="failed"), now=NOW)
    deliver_pending(config, now=NOW)
    assert len(fake_slack.workspace.top_level("#shop-data")) == 2


def test_owners_are_mentioned_in_the_parent_only(warehouse_url: str, fake_slack: FakeSlack) -> None:
    owner = {"channel": "#shop-data", "mention": ["<@U024BE7LH>", "<!subteam^SAZ94GDB8>"]}
    config = alert_config(warehouse_url, fake_slack.url, orders_owner=owner)
    opened(config)
    raise_now(config, finding(status="error"), now=NOW + timedelta(minutes=30))
    deliver_pending(config, now=NOW + timedelta(minutes=30))

    (parent,) = fake_slack.workspace.top_level("#shop-data")
    mentions = "<@U024BE7LH> <!subteam^SAZ94GDB8>"
    assert mentions in parent.text and mentions in str(parent.blocks)
    (reply,) = fake_slack.workspace.thread("#shop-data", parent.ts)
    assert "<@" not in reply.text and "subteam" not in str(reply.blocks)


def test_a_long_incident_is_told_again_in_its_thread_every_remind_every(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url, remind_every="1h")
    told = []
    for minutes in (0, 30, 70, 90, 135):  # opened, quiet, reminder, quiet, reminder
        at = NOW + timedelta(minutes=minutes)
        told.append([a.kind for a in raise_now(config, finding(reason="late"), now=at).alerts])
        deliver_pending(config, now=at)
    assert told == [["opened"], [], ["reminder"], [], ["reminder"]]

    (parent,) = fake_slack.workspace.top_level("#shop-data")
    replies = [m["text"] for m in thread_of(fake_slack, "C0SHOP", parent.ts)[1:]]
    assert len(replies) == 2 and "orders · freshness: still error" in replies[0]
    assert "Still failing after 1h 10m (3 failing verdicts): late" in replies[0]
    assert "Still failing after 2h 15m (5 failing verdicts)" in replies[1]
    assert "fired 5 times" in fake_slack.updated[-1]["text"]  # the parent counts every verdict


def test_without_remind_every_repeats_stay_quiet(warehouse_url: str) -> None:
    config = alert_config(warehouse_url)
    raise_now(config, finding(), now=NOW)
    assert raise_now(config, finding(), now=NOW + timedelta(days=3)).alerts == []


def test_a_thread_gone_between_the_update_and_the_reply_gets_a_new_parent(
    warehouse_url: str, fake_slack: FakeSlack
) -> None:
    config = alert_config(warehouse_url, fake_slack.url)
    opened(config)
    fake_slack.fail(error="thread_not_found", method="chat.postMessage")  # the reply's answer
    assert len(worsened(config).sent) == 1
    first, second = fake_slack.workspace.top_level("#shop-data")
    assert all_incidents(config)[0].thread == ("C0SHOP", second.ts)
    (reply,) = fake_slack.workspace.thread("#shop-data", second.ts)
    assert (
        "worse, error" in reply.text and fake_slack.workspace.thread("#shop-data", first.ts) == []
    )
