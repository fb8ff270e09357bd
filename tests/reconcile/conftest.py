"""Source and warehouse pairs for reconciliation tests."""

#: (source, warehouse) pairs the issue requires.
PAIRS = [
    ("postgresql", "postgresql"),
    ("mariadb", "postgresql"),
    ("sqlite", "sqlite"),
    ("mariadb", "sqlite"),
]
