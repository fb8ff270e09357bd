"""Canonical form: the text every database builds for a value before hashing it.

Two rows are equal when their canonical texts are equal, byte for byte, whichever engine built
them. Each dialect file declares, as small SQL fragments, how one value of each `ColumnKind`
becomes canonical text; this module holds what they share: the column spec, the row encoding and
the Python reference implementation (used as SQLite functions and for columns an engine cannot
canonicalize in SQL).

The rules:

- NULL is the marker `\\N`; values are joined with `|`. Text-like values (text, JSON) are
  length-prefixed (`5:hello`), so a value containing `|` or `\\N` cannot shift the columns: two
  different rows never share a canonical string.
- integers: decimal digits. decimals: fixed at the source column's scale, no `-0`
  (unconstrained: trailing zeros trimmed).
- timestamps: UTC, `YYYY-MM-DD HH:MM:SS[.fraction]`, truncated (never rounded) to the declared
  precision, fraction without trailing zeros. The precision is the smaller of the two columns'
  (MariaDB `DATETIME` is seconds, `DATETIME(6)` microseconds): MariaDB truncates fractions on
  insert, so truncation on both sides keeps a `DATETIME` column from looking wrong.
- dates `YYYY-MM-DD`; times `HH:MM:SS[.fraction]`; booleans `0`/`1`; binary as lower-case hex;
  UUIDs lower-case; text exact (no trimming).
- floats: the shortest text that reads back as the same double (`repr`), or for a 4-byte column
  (PostgreSQL `real`, MariaDB `FLOAT`) the same float32, so every change shows; `NaN`,
  `Infinity`, `-Infinity`; `-0` is `0`, as every engine's `=` and the merge see it.
- JSON: keys sorted, no insignificant white space, numbers normalized.

Where an engine cannot produce these in SQL (MariaDB JSON, floats across engines) the column is a
*Python column*: its raw value is fetched and canonicalized here, which forces streaming
comparison for that table (see `pipewarden.reconcile.diff`).
"""

import hashlib
import json
import math
import struct
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation, localcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeEngine

from pipewarden.dialects.kinds import ColumnKind

NULL = "\\N"
SEPARATOR = "|"
MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class ColumnSpec:
    """One compared column: its kind (from the source) and the declared canonical precision."""

    name: str
    kind: ColumnKind
    #: Fraction digits kept for timestamps and times (0, 3 or 6); truncated, never rounded.
    precision: int = 6
    #: This side's own decimal scale, when it differs from `kind.scale` (rounding needed).
    own_scale: int | None = None
    #: This side's column has a time zone (PostgreSQL timestamptz).
    own_timezone: bool = False


class CanonicalForm:
    """How a dialect builds canonical text and hashes it, as small SQL fragments; every engine
    overrides `value_text` and `hash64`, and what else differs."""

    name: str
    #: JSON canonical text family: engines in the same family agree on JSON in SQL (None: JSON
    #: is canonicalized in Python).
    json_family: str | None = None
    #: Float canonical text can be built in SQL and agrees with other engines of the same name.
    float_in_sql = True

    def prepare_hashing(self, conn: sa.Connection) -> None:
        """Per-connection set-up before hashing (SQLite registers its functions)."""

    def canonical_fraction_digits(self, type_: TypeEngine[Any]) -> int:
        """Fraction digits the values of a timestamp or time column keep, as declared."""
        precision = getattr(type_, "precision", None)
        return 6 if precision is None else int(precision)

    def value_text(self, column: Any, spec: ColumnSpec) -> Any:
        """One value's canonical text (NULL stays NULL)."""
        raise NotImplementedError(f"reconciliation does not support {self.name!r} yet")

    def text_length(self, text: Any) -> Any:
        return sa.func.char_length(text)

    def concat(self, parts: list[Any]) -> Any:
        expr = parts[0]
        for part in parts[1:]:
            expr = expr + part
        return expr

    def part(self, column: Any, spec: ColumnSpec) -> Any:
        """One value's canonical text, with the NULL marker and a length prefix for text."""
        text = self.value_text(column, spec)
        if spec.kind.kind in ("text", "json"):
            text = sa.cast(self.text_length(text), sa.Text) + sa.literal(":") + text
        return sa.func.coalesce(text, sa.literal(NULL))

    def row_text(self, columns: list[Any], specs: list[ColumnSpec]) -> Any:
        parts: list[Any] = []
        for i, (column, spec) in enumerate(zip(columns, specs)):
            if i:
                parts.append(sa.literal(SEPARATOR))
            parts.append(self.part(column, spec))
        return self.concat(parts)

    def hash64(self, text: Any) -> Any:
        """The first 64 bits of md5(text) as an integer (signed or unsigned: compared mod 2^64)."""
        raise NotImplementedError(f"reconciliation does not support {self.name!r} yet")

    def native_row_hash(
        self, server_version: int, columns: list[Any], specs: list[ColumnSpec]
    ) -> Any:
        """A type-aware 64-bit hash of the row's values, with no text at all, usable when both
        sides are this engine (None: not available)."""
        return None

    def native_hash64(self, text: Any) -> Any | None:
        """A faster 64-bit hash this engine has, usable when both sides are this engine."""
        return None

    def sum64(self, hash_expr: Any) -> Any:
        """An order-independent aggregate of `hash64` values, exact or modulo 2^64."""
        return sa.func.sum(hash_expr)


# --- the Python reference: SQLite functions and Python columns use these -------------------


def md5_hash64(text: str) -> int:
    """First 64 bits of md5 of the UTF-8 text, as a signed 64-bit integer (SQLite's int range)."""
    value = int.from_bytes(hashlib.md5(text.encode("utf-8")).digest()[:8], "big")
    return value - (1 << 64) if value >= 1 << 63 else value


def decimal_text(value: Any, scale: int | None) -> str | None:
    if value is None:
        return None
    try:
        # A float (SQLite's NUMERIC affinity stores one) converts exactly, as drivers do.
        number = Decimal(value) if isinstance(value, float) else Decimal(str(value))
    except InvalidOperation:
        return str(value)
    if scale is not None:
        with localcontext(prec=200):
            number = number.quantize(Decimal(1).scaleb(-scale))
        text = format(number, "f")
    else:
        text = format(number, "f")
        if "." in text:
            text = text.rstrip("0").rstrip(".")
    if text.startswith("-") and not text.strip("-0."):
        text = text[1:]
    return text


def float_text(value: Any, single: bool = False) -> str | None:
    """Exact: two doubles (float32 for `single`) share a text only when they are equal."""
    if value is None:
        return None
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number == 0:
        return "0"
    if not single:
        return repr(number)
    # The float32 the column holds (a double read from it may be its widening or the nearest
    # double to its decimal text), then the fewest significant digits that read back as it.
    packed = struct.pack("<f", number)
    number = struct.unpack("<f", packed)[0]
    for digits in range(1, 10):
        text = f"{number:.{digits}g}"
        if _float32_of(text) == packed:
            return text
    raise AssertionError(f"9 digits always identify a float32: {number!r}")


def _float32_of(text: str) -> bytes | None:
    try:
        return struct.pack("<f", float(text))
    except OverflowError:  # rounded up past the largest float32
        return None


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, date):
        parsed = datetime(value.year, value.month, value.day)
    else:
        parsed = datetime.fromisoformat(str(value).strip().replace("T", " "))
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _fraction(micro: int, precision: int) -> str:
    if precision <= 0 or micro == 0:
        return ""
    digits = f"{micro:06d}"[:precision].rstrip("0")
    return f".{digits}" if digits else ""


def timestamp_text(value: Any, precision: int) -> str | None:
    instant = _instant(value)
    if instant is None:
        return None
    # isoformat, not strftime: `%Y` leaves years before 1000 unpadded (`188-07-13`).
    whole = instant.replace(microsecond=0).isoformat(sep=" ")
    return whole + _fraction(instant.microsecond, precision)


def time_text(value: Any, precision: int) -> str | None:
    if value is None:
        return None
    parsed = value if isinstance(value, time) else time.fromisoformat(str(value))
    return parsed.strftime("%H:%M:%S") + _fraction(parsed.microsecond, precision)


def date_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    return date.fromisoformat(str(value)[:10]).isoformat()


def json_text(value: Any) -> str | None:
    """Keys sorted, compact, numbers normalized (1.0 == 1): how JSON is compared in Python."""
    if value is None:
        return None
    if isinstance(value, (bytes, bytearray)):
        value = value.decode("utf-8")
    if not isinstance(value, str):
        value = json.dumps(value)
    return _dump(json.loads(value, parse_float=Decimal, parse_int=Decimal))


def _dump(node: Any) -> str:
    if isinstance(node, dict):
        items = sorted(node.items())
        inner = ",".join(json.dumps(k, ensure_ascii=False) + ":" + _dump(v) for k, v in items)
        return "{" + inner + "}"
    if isinstance(node, list):
        return "[" + ",".join(_dump(v) for v in node) + "]"
    if isinstance(node, Decimal):
        return decimal_text(node.normalize(), None) or "0"
    return json.dumps(node, ensure_ascii=False)


def python_text(value: Any, spec: ColumnSpec) -> str | None:
    """The canonical text of a fetched value, for Python columns and SQLite functions."""
    kind = spec.kind.kind
    if value is None:
        return None
    if kind == "json":
        return json_text(value)
    if kind == "float":
        return float_text(value, spec.kind.single)
    if kind == "decimal":
        return decimal_text(value, spec.kind.scale)
    if kind == "timestamp":
        return timestamp_text(value, spec.precision)
    if kind == "date":
        return date_text(value)
    if kind == "time":
        return time_text(value, spec.precision)
    if kind == "boolean":
        return "1" if value else "0"
    if kind == "binary":
        return bytes(value).hex()
    if kind == "uuid":
        return str(value).lower()
    return str(value)


def python_part(value: Any, spec: ColumnSpec) -> str:
    text = python_text(value, spec)
    if text is None:
        return NULL
    if spec.kind.kind in ("text", "json"):
        return f"{len(text)}:{text}"
    return text
