"""Which columns hold customer data, and the salted hash prefix shown in their place."""

import os
from pathlib import Path

import pytest

from pipewarden.config import ConfigError
from pipewarden.config.load import parse_config
from pipewarden.config.pii import SALT_ENV, Redactor, configured_salt, pii_columns


def _table(**settings: object) -> object:
    config = parse_config(
        {
            "warehouse": {"url": "sqlite:///w.db"},
            "sources": {"s": {"url": "sqlite:///s.db"}},
            "tables": {"people": {"source": "s", "primary_key": "id", "cursor": "t", **settings}},
        },
        Path("test.yaml"),
    )
    return config.tables["people"]


def test_flagged_columns_and_those_the_normalizers_read_as_emails_or_phones_are_pii() -> None:
    table = _table(
        columns={
            "full_name": {"pii": True},
            "contact": {"rules": ["email"]},
            "status": {"in": ["a", "b"]},
            "city": {"pii": False},
        },
        normalize={"email": ["trim", "email"], "mobile": "phone_digits", "country": "country_code"},
    )

    assert pii_columns(table) == {"full_name", "contact", "email", "mobile"}  # type: ignore[arg-type]
    assert table.columns["full_name"].has_checks is False  # type: ignore[attr-defined]
    assert table.columns["status"].has_checks is True  # type: ignore[attr-defined]


def test_pii_must_be_a_yes_or_no() -> None:
    with pytest.raises(ConfigError, match=r"tables\.people\.columns\.full_name\.pii"):
        _table(columns={"full_name": {"pii": "sometimes"}})


def test_one_value_one_prefix_and_another_salt_another_prefix() -> None:
    one, again, other = Redactor(b"salt-1"), Redactor(b"salt-1"), Redactor(b"salt-2")

    prefix = one.prefix("ada@example.com")

    assert prefix.startswith("pii:") and len(prefix) == len("pii:") + 12
    assert again.prefix("ada@example.com") == prefix
    assert one.prefix("bob@example.com") != prefix
    assert other.prefix("ada@example.com") != prefix
    assert "salt-1" not in repr(one) and "salt" not in str(one.columns)


def test_values_shaped_like_emails_or_phones_are_hidden_in_any_column_and_in_text() -> None:
    hide = Redactor(b"s", ["full_name"])

    assert hide.value("full_name", "Ada Lovelace") == hide.prefix("Ada Lovelace")
    assert hide.value("note", " mailto:Ada@Example.com ") == hide.prefix(" mailto:Ada@Example.com ")
    assert hide.value("note", "+49 (151) 123-45 67") == hide.prefix("+49 (151) 123-45 67")
    assert hide.value("note", "call ada@example.com now") == (
        f"call {hide.prefix('ada@example.com')} now"
    )
    kept_values = (
        "12345678",
        "2024-03-05T12:30:00+00:00",
        "EUR",
        None,
        42,
        "xoxb-test-0000000000-1111111111-token",  # digits inside a token are no phone
        "a 0002345678 b",  # 00 then 0: no country code
    )
    for kept in kept_values:
        assert hide.value("note", kept) == kept
    shown = hide.value("full_name", "Ada Lovelace")
    assert hide.value("note", shown) == shown  # hiding twice changes nothing
    # A check about several columns (`full_name,id`) hides its value when one of them is pii.
    assert hide.value("full_name,id", "full_name=Ada, id=1") == hide.prefix("full_name=Ada, id=1")
    assert hide.key(["full_name", "id"], ["Ada", 1]) == [hide.prefix("Ada"), 1]


def test_an_empty_salt_is_refused() -> None:
    with pytest.raises(ValueError, match="salt"):
        Redactor(b"")


def test_a_salt_that_is_not_utf8_is_taken_as_its_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """`PIPEWARDEN_PII_SALT=$'\\xff\\xfe'` (random bytes from a secret store) is a salt, not a
    UnicodeEncodeError traceback: the bytes as set, the same in every process."""
    salt = b"\xff\xfe" + b"random-bytes!!"
    monkeypatch.setenv(SALT_ENV, os.fsdecode(salt))
    assert configured_salt() == salt


def test_a_short_salt_stops_a_command_at_start_up_without_quoting_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`PIPEWARDEN_PII_SALT=x`: a guessed email could be confirmed against its prefix, so the
    configuration does not load (exit 2 before any row is read); the salt is not repeated."""
    from pipewarden.config.load import load_config

    path = tmp_path / "pipewarden.yaml"
    path.write_text("warehouse:\n  url: sqlite:///wh.sqlite\nsources: {}\ntables: {}\n")
    monkeypatch.setenv(SALT_ENV, "secret1")
    with pytest.raises(
        ConfigError, match="PIPEWARDEN_PII_SALT: 7 bytes; a salt needs at least 16"
    ) as e:
        load_config(path)
    assert "secret1" not in str(e.value)
    monkeypatch.setenv(SALT_ENV, "a-salt-long-enough")
    load_config(path)
