"""Webhook signatures as shops and event platforms sign them.

`shopify`: the header holds base64(HMAC-SHA256(secret, raw body)). `stripe`: the header holds
`t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>` (several `v1` allowed); a
timestamp outside the tolerance is refused, so a captured delivery cannot be replayed later.
Every comparison is constant-time (`hmac.compare_digest`) and every configured secret is tried,
so a secret can be rotated with the old and the new one valid at once. Reasons never carry a
secret or a computed digest.
"""

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from datetime import timedelta

from pydantic import SecretStr

from pipewarden.config.streams import SigningConfig


class SignatureError(ValueError):
    """The delivery is not signed by any of the stream's secrets; the message says why."""


def _digest(secret: SecretStr, message: bytes) -> bytes:
    return hmac.new(secret.get_secret_value().encode(), message, hashlib.sha256).digest()


def _any_matches(secrets: Sequence[SecretStr], message: bytes, given: Sequence[bytes]) -> bool:
    # Every pair is compared, matched or not: the time taken says nothing about which matched.
    found = False
    for secret in secrets:
        expected = _digest(secret, message)
        for candidate in given:
            found |= hmac.compare_digest(expected, candidate)
    return found


def verify(signing: SigningConfig, headers: Mapping[str, str], body: bytes, now: float) -> None:
    """Raise `SignatureError` unless `body` is signed by one of the stream's secrets."""
    header = headers.get(signing.header_name.lower()) or headers.get(signing.header_name)
    if not header:
        raise SignatureError(f"missing signature header {signing.header_name}")
    if signing.scheme == "shopify":
        _verify_shopify(signing, header, body)
    else:
        _verify_stripe(signing, header, body, now)


def _verify_shopify(signing: SigningConfig, header: str, body: bytes) -> None:
    try:
        given = base64.b64decode(header.strip(), validate=True)
    except ValueError:
        raise SignatureError(f"{signing.header_name} is not base64") from None
    if not _any_matches(signing.secrets, body, [given]):
        raise SignatureError("signature does not match")


def _verify_stripe(signing: SigningConfig, header: str, body: bytes, now: float) -> None:
    timestamp, signatures = _stripe_parts(header, signing.header_name)
    age = abs(now - timestamp)
    if age > signing.tolerance.total_seconds():
        raise SignatureError(
            f"timestamp is {timedelta(seconds=round(age))} away from now, "
            f"outside the tolerance of {signing.tolerance}"
        )
    message = str(timestamp).encode() + b"." + body
    if not _any_matches(signing.secrets, message, signatures):
        raise SignatureError("signature does not match")


def _stripe_parts(header: str, name: str) -> tuple[int, list[bytes]]:
    timestamp: int | None = None
    signatures: list[bytes] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                raise SignatureError(f"{name}: t is not a unix time") from None
        elif key == "v1":
            try:
                signatures.append(bytes.fromhex(value))
            except ValueError:
                raise SignatureError(f"{name}: v1 is not hex") from None
    if timestamp is None or not signatures:
        raise SignatureError(f"{name} needs t=<unix time> and v1=<signature>")
    return timestamp, signatures


def sign(signing: SigningConfig, body: bytes, now: float, secret: int = 0) -> dict[str, str]:
    """The header a sender puts on `body` with the stream's `secret`-th secret (demo, bench)."""
    key = signing.secrets[secret]
    if signing.scheme == "shopify":
        value = base64.b64encode(_digest(key, body)).decode()
    else:
        t = int(now)
        value = f"t={t},v1={_digest(key, str(t).encode() + b'.' + body).hex()}"
    return {signing.header_name: value}
