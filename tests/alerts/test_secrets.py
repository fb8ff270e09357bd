"""The Slack token is used, and never shown: not in reprs, logs, errors, the outbox or output."""

import logging
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from pipewarden.alerts.deliver import deliver_pending
from pipewarden.cli.main import app
from pipewarden.config.load import ConfigError, load_config
from tests.alerts.support import NOW, alert_config, finding, outbox, raise_now
from tests.fixtures.slack import TOKEN, FakeSlack


def _write_config(path: Path, warehouse_url: str, slack_url: str, **slack: object) -> Path:
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse_url},
                "sources": {"shop": {"url": "sqlite:///unused.sqlite"}},
                "tables": {
                    "orders": {"source": "shop", "primary_key": "id", "cursor": "updated_at"}
                },
                "slack": {
                    "token": "${SLACK_BOT_TOKEN}",
                    "default_channel": "#alerts",
                    "base_url": slack_url,
                    "retries": 0,
                    **slack,
                },
            }
        )
    )
    return path


def test_the_token_comes_from_the_environment_and_stays_hidden(
    tmp_path: Path, sqlite_url, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    config = load_config(_write_config(tmp_path / "p.yaml", sqlite_url("wh"), "http://x/api/"))
    assert config.slack is not None
    assert config.slack.token.get_secret_value() == TOKEN
    for shown in (repr(config), str(config), config.model_dump_json(), str(config.model_dump())):
        assert TOKEN not in shown


def test_a_bad_slack_section_fails_without_the_token(
    tmp_path: Path, sqlite_url, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    path = _write_config(tmp_path / "p.yaml", sqlite_url("wh"), "not a url", default_channel="")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    text = str(caught.value)
    assert "slack.default_channel" in text and "slack.base_url" in text
    assert TOKEN not in text
    monkeypatch.delenv("SLACK_BOT_TOKEN")
    # An unset token is no error (alerts never block data); the section's mistakes still are.
    with pytest.raises(ConfigError, match="slack.default_channel"):
        load_config(path)


@pytest.mark.parametrize("fault", ["429", "503", "refused", "invalid_auth", "ok"])
def test_no_log_error_or_outbox_row_shows_the_token(
    fault: str,
    sqlite_url,  # type: ignore[no-untyped-def]
    fake_slack: FakeSlack,
    closed_port_url: str,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = closed_port_url if fault == "refused" else fake_slack.url
    config = alert_config(sqlite_url("wh"), url, retries=0)
    if fault == "invalid_auth":
        fake_slack.token = "xoxb-another-token"
    elif fault in ("429", "503"):
        fake_slack.fail(int(fault), Retry_After="0")
    raise_now(config, finding(reason=f"token {TOKEN[:4]}… must not leak"))
    caplog.set_level(logging.DEBUG)
    report = deliver_pending(config, now=NOW)
    (alert,) = outbox(config)
    if fault != "refused":
        assert fake_slack.seen[0].authorization == f"Bearer {TOKEN}"  # it was really used
    if fault != "ok":
        assert report.stopped or report.failed
    shown = [caplog.text, *capsys.readouterr(), alert.last_error or "", report.stopped or ""]
    assert "slack_sdk" in caplog.text  # the client did log, at debug level
    assert not [text for text in shown if TOKEN in text]


def test_the_command_line_never_prints_the_token(
    tmp_path: Path,
    sqlite_url,  # type: ignore[no-untyped-def]
    fake_slack: FakeSlack,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", TOKEN)
    monkeypatch.setenv("COLUMNS", "200")  # rich reads the width from here when not a terminal
    warehouse = sqlite_url("wh")
    path = _write_config(tmp_path / "p.yaml", warehouse, fake_slack.url)
    raise_now(load_config(path), finding(), finding(check="sync", status="failed"))
    fake_slack.fail(error="invalid_auth")
    runner = CliRunner()
    outputs = [
        runner.invoke(app, ["alerts", "send", "--config", str(path)]),
        runner.invoke(app, ["alerts", "--all", "--config", str(path)]),
        runner.invoke(app, ["alerts", "send", "--retry-failed", "--config", str(path)]),
    ]
    assert [r.exit_code for r in outputs] == [1, 1, 0]  # `alerts`: incidents are open
    assert "invalid_auth" in outputs[1].output
    assert "2 sent" in outputs[2].output
    for result in outputs:
        assert TOKEN not in result.output and TOKEN not in str(result.exception or "")
