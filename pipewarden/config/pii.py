"""Customer values outside the warehouse: which columns hold them, and what is shown instead.

A column holds customer data when the configuration says `pii: true`, or when its checks
recognise an email address or a phone number (the `email` and `phone_digits` normalize steps,
the `email` rule): those count whatever the flag says. Any value shaped like an email address
or an international phone number (`+` or `00`, a country code, 8 to 15 digits in all) is
hidden too, whichever column it came from (a free-text column, a key, a sentence quoting it).

A hidden value is shown as `pii:` and the first 12 hex digits of HMAC-SHA256(salt, the value as
text): one value always gives one prefix, so people can follow a customer across messages
without seeing it, and without the salt a guessed address cannot be checked against a prefix.
The salt is `PIPEWARDEN_PII_SALT` where set (every process then needs the same), else one kept
in the warehouse (`records.pii_salt`). It is a secret: no repr, log or error holds it.
"""

import hashlib
import hmac
import json
import os
import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

#: The environment variable that overrides the salt kept in the warehouse.
SALT_ENV = "PIPEWARDEN_PII_SALT"
PREFIX = "pii:"
#: Hex digits kept of the HMAC: 48 bits, no collision among millions of customers in practice.
HEX_DIGITS = 12
#: Normalize steps and column rules that recognise customer data.
PII_STEPS = frozenset({"email", "phone_digits"})
PII_RULES = frozenset({"email"})

_EMAIL = (
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@"
    r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
#: `+` or `00`, a country code (not 0), then 7 to 14 more digits; not inside a word or a token.
_PHONE = r"(?<![\w+-])(?:\+|00)[1-9](?:[\s().\-/]{0,2}\d){7,14}(?!\w)"
_IN_TEXT = re.compile(f"{_EMAIL}|{_PHONE}")
_WHOLE = re.compile(rf"\s*(?:mailto:)?(?:{_EMAIL}|{_PHONE})\s*")
_HIDDEN = re.compile(rf"{PREFIX}[0-9a-f]{{{HEX_DIGITS}}}")


class _Checked(Protocol):
    """A table or a stream as configured: its columns' checks and normalize steps."""

    @property
    def columns(self) -> Mapping[str, Any]: ...
    @property
    def normalize(self) -> Mapping[str, list[str]]: ...


def pii_columns(table: _Checked) -> frozenset[str]:
    """The columns of a table (or stream) whose values are customer data."""
    flagged = {name for name, spec in table.columns.items() if spec.pii}
    flagged |= {name for name, spec in table.columns.items() if PII_RULES & set(spec.rules)}
    flagged |= {name for name, steps in table.normalize.items() if PII_STEPS & set(steps)}
    return frozenset(flagged)


def looks_like_pii(value: Any) -> bool:
    """Whether a value is shaped like an email address or a phone number (hidden anywhere)."""
    return isinstance(value, str) and _WHOLE.fullmatch(value) is not None


def quotes_pii(text: str | None) -> bool:
    """Whether a sentence quotes an email address or a phone number."""
    return text is not None and _IN_TEXT.search(text) is not None


#: Fewer bytes than this and a guessed email could be confirmed against its prefix.
MIN_SALT_BYTES = 16


def configured_salt() -> bytes | None:
    """The salt from `PIPEWARDEN_PII_SALT`, or None when it is unset or empty.

    The bytes as set: a value that is not UTF-8 (random bytes) is a salt too. A salt shorter
    than `MIN_SALT_BYTES` is refused (ValueError, never quoting it): `load_config` asks at
    start-up, so a command stops before it reads a row rather than in the middle of a run.
    """
    value = os.environ.get(SALT_ENV, "")
    if not value:
        return None
    salt = os.fsencode(value)
    if len(salt) < MIN_SALT_BYTES:
        raise ValueError(
            f"{SALT_ENV}: {len(salt)} bytes; a salt needs at least {MIN_SALT_BYTES} (a short one "
            "lets a guessed email be confirmed against its pii: prefix), e.g. "
            "`openssl rand -hex 16`"
        )
    return salt


def _text(value: Any) -> str:
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, default=str, sort_keys=True, separators=(",", ":"))
    return str(value)


class Redactor:
    """Shows customer values as salted hash prefixes: the columns named, and anything shaped
    like an email address or a phone number in any column."""

    __slots__ = ("_salt", "columns")

    def __init__(self, salt: bytes, columns: Iterable[str] = ()) -> None:
        if not salt:
            raise ValueError("a PII salt cannot be empty")
        self._salt = salt
        self.columns = frozenset(columns)

    def __repr__(self) -> str:  # never the salt
        return f"Redactor(columns={sorted(self.columns)!r})"

    def for_columns(self, columns: Iterable[str]) -> "Redactor":
        """The same salt, for another table's columns."""
        return Redactor(self._salt, columns)

    def prefix(self, value: Any) -> str:
        """`pii:` and the first hex digits of the value's HMAC: equal values, equal prefixes."""
        digest = hmac.new(self._salt, _text(value).encode(), hashlib.sha256).hexdigest()
        return PREFIX + digest[:HEX_DIGITS]

    def value(self, column: str | None, value: Any) -> Any:
        """`value` as it may be shown: its prefix when the column or the value is customer
        data; NULL and prefixes already made stay as they are."""
        if value is None or (isinstance(value, str) and _HIDDEN.fullmatch(value)):
            return value
        if column is not None and self.columns & set(column.split(",")):
            return self.prefix(value)  # one column, or a check's columns (`email,id`)
        if looks_like_pii(value):
            return self.prefix(value)
        if isinstance(value, str):
            return self.text(value)
        return value

    def row(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """A row (or a key) with each value as it may be shown."""
        return {column: self.value(column, v) for column, v in row.items()}

    def key(self, columns: Iterable[str], key: Any) -> Any:
        """A key given as a list of values (one per key column, or a bare value for one)."""
        names = list(columns)
        if isinstance(key, list) and len(key) == len(names):
            return [self.value(c, v) for c, v in zip(names, key, strict=True)]
        if len(names) == 1:
            return self.value(names[0], key)
        return self.prefix(key) if self.columns & set(names) else key

    def text(self, text: str) -> str:
        """A sentence with every email address and phone number in it replaced by its prefix."""
        return _IN_TEXT.sub(lambda m: self.prefix(m.group(0)), text)
