"""Passwords in configured URLs never show: not in errors, log lines, CLI output or records.

Passwords are drawn from every printable character, with `@`, `:`, `/`, spaces and percent
escapes favoured; a leak is any fragment of 4 or more characters of the password (as written,
or percent-decoded) that is not also elsewhere in the URL or in a run with another password.
"""

import logging
import re
from pathlib import Path
from urllib.parse import unquote

import pytest
import sqlalchemy as sa
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from pipewarden.checks.monitoring.run import run_checks
from pipewarden.cli.main import app
from pipewarden.config.load import _VAR, ConfigError, load_config
from pipewarden.config.urls import display_url, parse_url, redact_secrets
from pipewarden.db.engines import describe_connection_error
from pipewarden.reconcile.run import reconcile_table
from pipewarden.sync.run import sync_table

#: Nothing listens here: every connection is refused at once.
CLOSED = "127.0.0.1:1"
PLACEHOLDER = "Placeholder0"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")

passwords = (
    st.lists(
        st.one_of(
            st.characters(blacklist_categories=("Cs", "Cc")),
            st.sampled_from(["@", ":", "/", " ", "%", "?", "#", "'", '"', "\\", "="]),
            st.sampled_from(["%40", "%3A", "%2F", "%20", "%25", "%zz"]),
        ),
        min_size=1,
        max_size=20,
    )
    .map(lambda parts: "".join(parts).strip() or "x")
    .filter(lambda s: not _VAR.search(s))
)


def _urls(password: str) -> dict[str, str]:
    """A URL per source engine holding `password`, each pointing at nothing."""
    return {
        "pg": f"postgresql+psycopg://pw_user:{password}@{CLOSED}/pw_db",
        "my": f"mysql+pymysql://pw_user:{password}@{CLOSED}/pw_db",
    }


def leaks(password: str, texts: list[str], urls: list[str], benign: str = "") -> list[str]:
    """Fragments (4+ characters) of the password found in `texts`."""
    elsewhere = " ".join(u.replace(password, "") for u in urls) + benign
    seen = _UUID.sub("", "\n".join(texts))
    found = []
    for form in {password, unquote(password)}:
        for i in range(len(form)):
            for j in range(i + 4, len(form) + 1):
                fragment = form[i:j]
                if fragment not in elsewhere and fragment in seen:
                    found.append(fragment)
    return found


@settings(max_examples=400, deadline=None)
@given(password=passwords, reason=st.sampled_from(["Connection refused", "'root'@'host'"]))
@example(password="@ %40", reason="Connection refused")  # the hint's own "%40" is no leak
def test_redaction_by_position_hides_every_password(password: str, reason: str) -> None:
    for url in _urls(password).values():
        texts = [display_url(url), redact_secrets(f"cannot connect to {url}: {reason}")]
        texts.append(redact_secrets(f"two: {url} and {url}\n{url}"))
        try:
            parsed = parse_url(url)
        except ValueError as error:
            texts.append(str(error))
            assert "@" in password  # only an ambiguous URL is refused
        else:
            assert parsed.password == unquote(password) and parsed.host == "127.0.0.1"
            texts.append(describe_connection_error(parsed, ConnectionError(reason)))
            texts.append(describe_connection_error(url, ConnectionError(reason)))
        assert not leaks(password, texts, [url, reason], _refusal_text(url, password)), texts


def _refusal_text(url: str, password: str) -> str:
    """The refusal's own words for an ambiguous URL (its hint names `%40`), password aside."""
    try:
        parse_url(url.replace(password, f"{PLACEHOLDER}@x", 1))
    except ValueError as error:
        return str(error)
    return ""


def test_the_reported_passwords_are_hidden_whole() -> None:
    url = "mysql+pymysql://root:p@ss@Secret9@127.0.0.1:3306/relprobe_src"
    with pytest.raises(ValueError) as refused:
        parse_url(url)
    assert "root:***@127.0.0.1:3306/relprobe_src" in str(refused.value) and "%40" in str(
        refused.value
    )
    spaced = "postgresql+psycopg://u:Bad Secret@127.0.0.1:x/db"
    with pytest.raises(ValueError) as bad:
        parse_url(spaced)
    assert "Secret" not in str(bad.value) and "u:***@127.0.0.1:x/db" in str(bad.value)


def _write(path: Path, warehouse: str, password: str) -> Path:
    urls = _urls(password)
    path.write_text(
        yaml.safe_dump(
            {
                "warehouse": {"url": warehouse},
                "sources": {"pg": {"url": urls["pg"]}, "my": {"url": urls["my"]}},
                "tables": {
                    name: {"source": name, "primary_key": "id", "cursor": "v"} for name in urls
                },
            }
        )
    )
    return path


def _stored(warehouse: str) -> list[str]:
    """Every text value of every pipewarden table: what the dashboards' reader can read."""
    engine = sa.create_engine(warehouse)
    texts = []
    with engine.connect() as conn:
        for name in sa.inspect(conn).get_table_names():
            if name.startswith("pipewarden_"):
                table = sa.Table(name, sa.MetaData(), autoload_with=conn)
                texts += [repr(row) for row in conn.execute(sa.select(table))]
    engine.dispose()
    return texts


def _run_everything(path: Path, warehouse: str, caplog: pytest.LogCaptureFixture) -> list[str]:
    """sync, reconcile and check through the CLI and the plain functions; all they said."""
    texts: list[str] = []
    runner = CliRunner()
    for args in (["sync"], ["reconcile", "pg"], ["reconcile", "my"], ["check"]):
        result = runner.invoke(app, [*args, "--config", str(path)])
        texts += [result.output, result.stderr, repr(result.exception)]
    try:
        config = load_config(path)
    except ConfigError as error:
        texts.append(str(error))
    else:
        for name in config.tables:
            for call in (sync_table, reconcile_table):
                try:
                    call(config, name)
                except Exception as error:  # noqa: BLE001 - what it says is the point
                    texts += [str(error), repr(error)]
        try:
            run_checks(config)
        except Exception as error:  # noqa: BLE001
            texts += [str(error), repr(error)]
    texts.append(caplog.text)
    texts += [r.getMessage() for r in caplog.records]
    return texts + _stored(warehouse)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(password=passwords)
def test_no_password_in_errors_logs_output_or_records(
    password: str, tmp_path: Path, sqlite_url, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    warehouse = sqlite_url("wh")
    benign = "\n".join(
        _run_everything(_write(tmp_path / "p.yaml", warehouse, PLACEHOLDER), warehouse, caplog)
    )
    caplog.clear()
    texts = _run_everything(_write(tmp_path / "p.yaml", warehouse, password), warehouse, caplog)
    assert not leaks(password, texts, list(_urls(password).values()), benign), texts


@pytest.mark.parametrize("password", ["p@ss@Secret9", "Bad Secret", "s3cr:t/pa ss%40wd"])
def test_the_dashboards_reader_never_sees_a_password(
    password: str, tmp_path: Path, postgres, mariadb, caplog: pytest.LogCaptureFixture
) -> None:  # type: ignore[no-untyped-def]
    """On a PostgreSQL warehouse, with a real MariaDB refusing the password as well."""
    caplog.set_level(logging.DEBUG)
    warehouse = postgres.new("wh")
    real = mariadb.new("src").replace("root@", f"root:{password}@")
    path = _write(tmp_path / "p.yaml", warehouse, password)
    data = yaml.safe_load(path.read_text())
    data["sources"]["real"] = {"url": real}
    data["tables"]["real"] = {"source": "real", "primary_key": "id", "cursor": "v"}
    path.write_text(yaml.safe_dump(data))

    texts = _run_everything(path, warehouse, caplog)

    assert not leaks(password, texts, [*_urls(password).values(), real]), texts
    assert any("cannot connect" in t or "more than one '@'" in t for t in texts)
