"""`pipewarden alerts` shows open incidents and the outbox; `alerts send` delivers it."""

from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipewarden.cli.main import app
from pipewarden.config.load import load_config
from tests.alerts.support import finding, raise_now
from tests.fixtures.slack import TOKEN, FakeSlack


@pytest.fixture
def config_file(tmp_path: Path, sqlite_url, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """`config_file(slack_url=None)`: a configuration file; with a URL, a slack: section."""
    monkeypatch.setenv("COLUMNS", "200")  # rich reads the width from here when not a terminal
    warehouse = sqlite_url("wh")

    def make(slack_url: str | None = None) -> str:
        data: dict[str, object] = {
            "warehouse": {"url": warehouse},
            "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
            "tables": {
                "orders": {
                    "source": "shop",
                    "primary_key": "id",
                    "cursor": "updated_at",
                    "owner": "#shop-data",
                }
            },
        }
        if slack_url:
            data["slack"] = {"token": TOKEN, "default_channel": "#alerts", "base_url": slack_url}
        path = tmp_path / "pipewarden.yaml"
        path.write_text(yaml.safe_dump(data))
        return str(path)

    return make


def test_without_slack_the_outbox_is_listed_and_send_says_why_not(config_file) -> None:  # type: ignore[no-untyped-def]
    path = config_file()
    runner = CliRunner()
    empty = runner.invoke(app, ["alerts", "--config", path])
    assert empty.exit_code == 0 and "No open incidents." in empty.output
    raise_now(load_config(path), finding(reason="newest row 4h 00m old"))
    listed = runner.invoke(app, ["alerts", "--config", path])
    assert listed.exit_code == 1, listed.output  # an incident is open
    assert "open incidents" in listed.output and "orders" in listed.output
    assert "opened error" in listed.output and "newest row 4h 00m old" in listed.output
    assert "1 alerts in the outbox; no slack: section" in listed.output
    refused = runner.invoke(app, ["alerts", "send", "--config", path])
    assert refused.exit_code == 2 and "no slack: section" in refused.output


def test_send_delivers_and_the_outbox_empties(config_file, fake_slack: FakeSlack) -> None:  # type: ignore[no-untyped-def]
    path = config_file(fake_slack.url)
    raise_now(load_config(path), finding(), finding(check="sync", status="failed"))
    runner = CliRunner()
    sent = runner.invoke(app, ["alerts", "send", "--config", path])
    assert sent.exit_code == 0, sent.output
    assert "2 sent, 0 to retry, 0 refused by Slack, 0 waiting." in sent.output
    after = runner.invoke(app, ["alerts", "--config", path])
    assert "The outbox is empty" in after.output
    history = runner.invoke(app, ["alerts", "--all", "--config", path])
    assert history.output.count("C0SHOP") == 2 and "sent" in history.output
    (message,) = fake_slack.posted  # one table's failing checks of one run: one message
    assert "orders: 2 of 2 checks failing: freshness, sync" in message["text"]
