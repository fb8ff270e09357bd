"""Database URLs as people may see them: with the password hidden."""

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

_PASSWORD_IN_URL = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]+)@")
_PASSWORD_PARAM = re.compile(r"(?i)(password|passwd|pwd)=([^&\s'\"]+)")


def redact_secrets(text: str) -> str:
    """Hide passwords in any URL or `password=` parameter found in `text`."""
    text = _PASSWORD_IN_URL.sub(lambda m: f"{m.group('head')}***@", text)
    return _PASSWORD_PARAM.sub(lambda m: f"{m.group(1)}=***", text)


def parse_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL; the error names the URL with its password hidden."""
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL: {redact_secrets(url)!r}") from None


def display_url(url: str | URL) -> str:
    """The URL as logs and errors may show it."""
    try:
        return parse_url(url).render_as_string(hide_password=True)
    except ValueError:
        return redact_secrets(str(url))
