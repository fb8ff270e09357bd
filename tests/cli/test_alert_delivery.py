"""The CLI's `sync`, `check` and `reconcile` deliver what they raised; alerts never block data.

Each command runs as a user runs it (a subprocess), against the local Slack. Without a usable
token (its variable unset, empty, or revoked) the data still moves, the exit code is the data's,
the alerts wait in the outbox and the command says once, on stderr, why.
"""

import os
import re
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from pipewarden.records.alerts import PENDING, SENT, alerts
from tests.fixtures.shop import ORDERS
from tests.fixtures.slack import TOKEN, FakeSlack

TOKEN_VARIABLE = "PIPEWARDEN_TEST_SLACK_TOKEN"


class Source:
    """A SQLite orders source and warehouse, and a configuration file over them."""

    def __init__(self, tmp_path: Path, sqlite_url: Callable[[str], str]) -> None:
        self.url, self.warehouse = sqlite_url("shop"), sqlite_url("wh")
        self.engine = sa.create_engine(self.url)
        ORDERS.create(self.engine)
        self.path = tmp_path / "pipewarden.yaml"

    def add(self, *keys: int, hours_ago: float = 3) -> None:
        stamp = (datetime.now(UTC) - timedelta(hours=hours_ago)).replace(tzinfo=None)
        with self.engine.begin() as conn:
            conn.execute(ORDERS.insert(), [{"order_id": k, "updated_at": stamp} for k in keys])

    def execute(self, sql: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql))

    def write(self, slack_url: str, **slack: Any) -> str:
        table = {
            "source": "shop",
            "primary_key": ["order_id"],
            "cursor": "updated_at",
            "owner": "#shop-data",
            "freshness": {"error_after": "2h"},
        }
        data = {
            "warehouse": {"url": self.warehouse},
            "sources": {"shop": {"url": self.url}},
            "tables": {"orders": table, "ghost": {**table, "source_table": "no_such_table"}},
            "slack": {
                "token": "${" + TOKEN_VARIABLE + "}",
                "default_channel": "#alerts",
                "base_url": slack_url,
                "retries": 0,
                **slack,
            },
        }
        self.path.write_text(yaml.safe_dump(data))
        return str(self.path)

    def outbox(self) -> list[tuple[str, str, str, int]]:
        """(check, kind, state, attempts) of every alert, oldest first."""
        engine = sa.create_engine(self.warehouse)
        try:
            with engine.connect() as conn:
                c = alerts.c
                q = sa.select(c.check, c.kind, c.state, c.attempts).order_by(c.id)
                return [tuple(r) for r in conn.execute(q)]  # type: ignore[misc]
        finally:
            engine.dispose()


def subjects(slack: FakeSlack) -> list[str]:
    """`table · check` of each message Slack took, in order."""
    found = [
        re.search(r"(\S+ · \S+?)(:| |$)", m["blocks"][0]["text"]["text"]) for m in slack.posted
    ]
    return [m.group(1) if m else "" for m in found]


def pipewarden(path: str, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess:
    """Run the CLI in a process of its own, with the token's variable set to `token` or unset."""
    env = {**os.environ, "COLUMNS": "200"}
    env.pop(TOKEN_VARIABLE, None)
    if token is not None:
        env[TOKEN_VARIABLE] = token
    return subprocess.run(
        [sys.executable, "-m", "pipewarden.cli.main", *args, "--config", path],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )


@pytest.fixture
def source(tmp_path: Path, sqlite_url: Callable[[str], str]) -> Source:
    return Source(tmp_path, sqlite_url)


def test_sync_check_and_reconcile_deliver_what_they_raised(
    source: Source, fake_slack: FakeSlack
) -> None:
    source.add(1, 2, 3)
    path = source.write(fake_slack.url)

    synced = pipewarden(path, "sync")  # ghost's source table is missing: its sync fails
    assert synced.returncode == 2, synced.stderr
    assert subjects(fake_slack) == ["ghost · sync"]

    checked = pipewarden(path, "check", "orders")  # three hours old, two hours allowed
    assert checked.returncode == 1, checked.stdout
    assert subjects(fake_slack)[-1] == "orders · freshness"

    source.execute("DELETE FROM orders WHERE order_id = 2")  # a hard delete the cursor misses
    found = pipewarden(path, "reconcile", "orders", "--dry-run")
    assert found.returncode == 1, found.stdout
    assert subjects(fake_slack)[-1] == "orders · reconcile"

    assert len(fake_slack.posted) == 3
    assert {state for _, _, state, _ in source.outbox()} == {SENT}
    assert "warning" not in synced.stderr + checked.stderr + found.stderr


@pytest.mark.parametrize(
    ("token", "why"),
    [
        (None, f"environment variable {TOKEN_VARIABLE} is not set"),
        ("", "slack.token is empty"),
        ("xoxb-revoked-0000", "Slack refused the token: invalid_auth"),
    ],
    ids=["unset", "empty", "revoked"],
)
def test_without_a_usable_token_the_data_moves_and_alerts_wait(
    source: Source, fake_slack: FakeSlack, token: str | None, why: str
) -> None:
    source.add(1, 2, 3)
    path = source.write(fake_slack.url)

    status = pipewarden(path, "status", token=token)
    assert (status.returncode, status.stderr) == (1, "")  # 1: nothing synced yet, over its SLA
    first = pipewarden(path, "sync", "orders", token=token)
    assert first.returncode == 0, first.stderr
    assert "warning" not in first.stderr  # nothing raised, nothing waits
    source.execute("ALTER TABLE orders ADD COLUMN channel TEXT")
    added = pipewarden(path, "sync", "orders", token=token)  # a new column: a notice
    checked = pipewarden(path, "check", "orders", token=token)  # freshness: an error

    assert (added.returncode, checked.returncode) == (0, 1), added.stderr + checked.stderr
    for run, waiting in ((added, 1), (checked, 2)):
        assert run.stderr.count("warning:") == 1, run.stderr
        assert f"alerts not delivered, {waiting} wait in the outbox" in run.stderr
        assert why in " ".join(run.stderr.split())
    engine = sa.create_engine(source.warehouse)
    with engine.connect() as conn:
        columns = [c["name"] for c in sa.inspect(conn).get_columns("orders")]
        loaded = conn.execute(sa.text("SELECT COUNT(*) FROM orders")).scalar()
    engine.dispose()
    assert "channel" in columns and loaded == 3
    assert [(check, state) for check, _, state, _ in source.outbox()] == [
        ("schema", PENDING),
        ("freshness", PENDING),
    ]
    assert all(TOKEN not in r.stderr + r.stdout for r in (added, checked))

    sent = pipewarden(path, "alerts", "send")  # the token is fixed: they go out, in order
    assert sent.returncode == 0, sent.stdout
    assert subjects(fake_slack) == ["orders · schema", "orders · freshness"]


def test_a_post_whose_answer_times_out_is_sent_again(source: Source, fake_slack: FakeSlack) -> None:
    """At least once: Slack took the message, its answer came after the client gave up."""
    source.add(1, 2, 3)
    path = source.write(fake_slack.url, timeout_seconds=1)
    assert pipewarden(path, "sync", "orders").returncode == 0
    before = len(fake_slack.seen)
    release, held = threading.Event(), threading.Event()

    def hold_the_first_answer() -> None:
        if not held.is_set():
            held.set()
            release.wait(60)

    fake_slack.on_request = hold_the_first_answer
    timed_out = pipewarden(path, "check", "orders")
    release.set()
    assert fake_slack.wait_for_requests(before + 1)  # the held request is answered and recorded

    assert timed_out.returncode == 1, timed_out.stdout
    assert "alerts not delivered, 1 wait in the outbox" in timed_out.stderr
    assert "cannot reach Slack" in timed_out.stderr
    assert len(fake_slack.posted) == 1  # Slack has it
    assert source.outbox() == [("freshness", "opened", PENDING, 1)]  # pipewarden does not know

    engine = sa.create_engine(source.warehouse)
    with engine.begin() as conn:  # the back-off has passed
        conn.execute(alerts.update().values(next_attempt_at=None))
    engine.dispose()
    again = pipewarden(path, "check", "orders")

    assert again.returncode == 1 and "warning" not in again.stderr, again.stderr
    first, second = fake_slack.posted
    # The same incident's parent twice (the second counts the second check's verdict too).
    assert first["blocks"][0] == second["blocks"][0] and "fired 2 times" in second["text"]
    assert "thread_ts" not in first and "thread_ts" not in second
    assert source.outbox() == [("freshness", "opened", SENT, 2)]


def test_an_incident_from_the_shell_is_one_thread_that_ends_resolved(
    source: Source, fake_slack: FakeSlack
) -> None:
    """check finds orders stale (the parent); sync and check again: the recovery is a reply and
    the parent, updated in place, says resolved. The reconcile's keys are named in its alert."""
    source.add(1, 2, 3)
    path = source.write(fake_slack.url)
    assert pipewarden(path, "sync", "orders").returncode == 0
    assert pipewarden(path, "check", "orders").returncode == 1  # three hours old, 2h allowed
    source.add(4, hours_ago=0)
    assert pipewarden(path, "sync", "orders").returncode == 0
    fresh = pipewarden(path, "check", "orders")
    assert fresh.returncode == 0, fresh.stdout

    (parent,) = fake_slack.workspace.top_level("#shop-data")
    assert parent.edited and "orders · freshness: resolved" in parent.text
    (reply,) = fake_slack.workspace.thread("#shop-data", parent.ts)
    assert "orders · freshness recovered" in reply.text

    source.execute("DELETE FROM orders WHERE order_id IN (2, 3)")
    assert pipewarden(path, "reconcile", "orders", "--dry-run").returncode == 1
    differing = fake_slack.workspace.top_level("#shop-data")[-1]
    assert "2 rows differ from the source" in differing.text
    assert re.search(r"keys (2, 3|3, 2)\b", differing.text), differing.text


def test_a_replay_that_releases_the_last_held_row_announces_the_recovery(
    source: Source, fake_slack: FakeSlack
) -> None:
    """The replay closes the quarantine incident: its recovery goes out at once, as a sync's
    would, not whenever some later command happens to deliver the outbox."""
    source.add(1, 2, hours_ago=0)
    path = source.write(fake_slack.url)
    data = yaml.safe_load(Path(path).read_text())
    del data["tables"]["ghost"]
    data["tables"]["orders"]["columns"] = {"status": {"nullable": False}}
    Path(path).write_text(yaml.safe_dump(data))
    synced = pipewarden(path, "sync")
    assert synced.returncode == 1, synced.stderr
    assert subjects(fake_slack) == ["orders · quarantine"]

    data["tables"]["orders"]["columns"] = {}  # the check was wrong
    Path(path).write_text(yaml.safe_dump(data))
    dry = pipewarden(path, "quarantine", "replay", "orders", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert len(fake_slack.seen) == 1  # a dry run changes nothing, announces nothing
    replayed = pipewarden(path, "quarantine", "replay", "orders", "--by", "alice")
    assert replayed.returncode == 0, replayed.stderr

    assert {state for _, _, state, _ in source.outbox()} == {SENT}
    assert ("quarantine", "recovered", SENT, 1) in source.outbox()
    assert "resolved" in str(fake_slack.updated[-1]["blocks"])
