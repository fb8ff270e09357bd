"""Source and warehouse pairs for reconciliation tests."""

from collections.abc import Callable

import pytest

#: (source, warehouse) pairs the issue requires.
PAIRS = [
    ("postgresql", "postgresql"),
    ("mariadb", "postgresql"),
    ("sqlite", "sqlite"),
    ("mariadb", "sqlite"),
]


@pytest.fixture
def make_url(
    request: pytest.FixtureRequest, sqlite_url: Callable[[str], str]
) -> Callable[[str, str], str]:
    """`make_url(kind, name)`: a fresh database of that kind."""

    def make(kind: str, name: str) -> str:
        if kind == "postgresql":
            return request.getfixturevalue("postgres").new(name)
        if kind == "mariadb":
            return request.getfixturevalue("mariadb").new(name)
        return sqlite_url(name)

    return make
