"""Database URLs as people may see them: with the password hidden.

A password is found by its position, never by its value: in `scheme://user:PASSWORD@host`, the
password runs from the first `:` after `://` to the *last* `@` of the URL, so an unescaped `@`,
a space or a `:` in it is hidden whole, whatever a URL parser made of it. Replacing the value
instead would leave whatever the parser cut off visible, and a short password would mask
unrelated text (every `p` of a message for the password `p`).
"""

import re

from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

HIDDEN = "***"
_SCHEME = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://")
_USER = re.compile(r"[^:/@\s'\"]*:")
_PASSWORD_PARAM = re.compile(r"(?i)(password|passwd|pwd)=([^&\s'\"]+)")


def password_span(url: str, start: int = 0, end: int | None = None) -> tuple[int, int] | None:
    """Where the password of the URL whose `scheme://` begins at `start` lies in `url[:end]`:
    from after `user:` to the last `@` (None when the URL carries no password)."""
    scheme = _SCHEME.match(url, start)
    if scheme is None:
        return None
    user = _USER.match(url, scheme.end())
    if user is None:
        return None
    at = url.rfind("@", user.end(), len(url) if end is None else end)
    return None if at < 0 else (user.end(), at)


def redact_secrets(text: str) -> str:
    """Hide the password of every URL in `text`, and every `password=` parameter.

    In free text a URL's end is unknown, so a password is taken to run to the last `@` on its
    line (a second URL on the line included): more may be hidden than the password, never
    less. A password already hidden (`user:***@`) is left as it is, so the text after it stays
    readable.
    """
    out: list[str] = []
    done = 0
    for match in _SCHEME.finditer(text):
        if match.start() < done:
            continue
        line_end = text.find("\n", match.start())
        span = password_span(text, match.start(), len(text) if line_end < 0 else line_end)
        if span is None or text.startswith(HIDDEN + "@", span[0]):
            continue
        out.append(text[done : span[0]] + HIDDEN)
        done = span[1]
    out.append(text[done:])
    return _PASSWORD_PARAM.sub(lambda m: f"{m.group(1)}={HIDDEN}", "".join(out))


def parse_url(url: str | URL) -> URL:
    """Parse a SQLAlchemy URL; the error names the URL with its password hidden.

    SQLAlchemy ends a password at its first `@`: with an unescaped `@` in the password, the
    rest would become the host name, shown in every message naming the host. Such a URL is
    ambiguous (an `@` may also sit in a query value), so it is refused, saying how to write it.
    """
    if isinstance(url, URL):
        return url
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        raise ValueError(f"not a database URL: {display_url(url)!r}") from None
    span = password_span(url)
    if parsed.password is not None and span is not None and "@" in url[span[0] : span[1]]:
        raise ValueError(
            f"not a database URL: {display_url(url)!r}: it has more than one '@' after its "
            "user name; write an '@' in the password (or elsewhere) as %40"
        )
    return parsed


def display_url(url: str | URL) -> str:
    """The URL as logs and errors may show it: its password hidden by position."""
    if isinstance(url, URL):
        return url.render_as_string(hide_password=True)
    span = password_span(url)
    return url if span is None else url[: span[0]] + HIDDEN + url[span[1] :]
