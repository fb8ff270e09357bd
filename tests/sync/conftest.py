"""Source and warehouse kinds for the sync scenarios (`make_url` is in tests/fixtures)."""

SOURCES = ["postgresql", "mariadb", "sqlite"]
WAREHOUSES = ["postgresql", "sqlite"]
