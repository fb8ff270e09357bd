"""A table's owner as people read it: the name dashboards and the exporter show."""


def owner_name(owner: str | None) -> str | None:
    """The display name of a table's or stream's configured `owner`; None when it has none.

    Today the owner is one string (a channel such as `#shop-data`), shown as written.
    """
    if owner is None:
        return None
    return owner.strip() or None
