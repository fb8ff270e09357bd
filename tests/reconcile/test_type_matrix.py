"""Zero false differences over every column type, on every required source/warehouse pair."""

import pytest

from pipewarden.reconcile.diff import DiffOptions, diff_table
from tests.reconcile.support import PAIRS, copy_to_warehouse, create_source, execute, make_config


@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_an_exact_copy_has_no_differences(make_url, source_kind, warehouse_kind):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    create_source(source_url, source_kind).dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)

    result = diff_table(config, "items")

    assert (result.missing, result.extra, result.changed) == ([], [], [])
    assert result.complete and result.rows_compared == 5


@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_each_column_change_is_found_and_named(make_url, source_kind, warehouse_kind):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    create_source(source_url, source_kind).dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    execute(
        warehouse_url,
        "UPDATE items SET name = 'Zoe 😀 日本' WHERE id = 1",
        "UPDATE items SET note = 'trailing ' WHERE id = 1",
        "UPDATE items SET qty = 1 WHERE id = 2",
        "DELETE FROM items WHERE id = 4",
    )
    execute(source_url, "UPDATE items SET price = 1000000000.00 WHERE id = 3")

    result = diff_table(config, "items")

    assert [d.key for d in result.missing] == [(4,)]
    assert result.extra == []
    changed = {d.key: d.columns for d in result.changed}
    assert changed == {(1,): ["name", "note"], (2,): ["qty"], (3,): ["price"]}


@pytest.mark.parametrize("warehouse_kind", ["postgresql", "sqlite"])
def test_datetime_fractions_the_source_cannot_hold_do_not_differ(make_url, warehouse_kind):
    """MariaDB DATETIME keeps whole seconds: a warehouse value with a fraction is still equal."""
    source_url, warehouse_url = make_url("mariadb", "src"), make_url(warehouse_kind, "wh")
    create_source(source_url, "mariadb").dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    fraction = {
        "postgresql": "UPDATE items SET created_at = created_at + interval '0.75 second'",
        "sqlite": "UPDATE items SET created_at = substr(created_at, 1, 19) || '.750000'",
    }[warehouse_kind]
    execute(warehouse_url, fraction)

    assert diff_table(config, "items").differences == 0

    # DATETIME(6) keeps microseconds: one microsecond off is a difference.
    shift = {
        "postgresql": "UPDATE items SET updated_at = updated_at + interval '1 microsecond'"
        " WHERE id = 3",
        "sqlite": "UPDATE items SET updated_at = '2024-06-30 23:59:59.999998' WHERE id = 3",
    }[warehouse_kind]
    execute(warehouse_url, shift)
    result = diff_table(config, "items")
    assert [(d.key, d.columns) for d in result.changed] == [((3,), ["updated_at"])]


def test_json_with_reordered_keys_is_equal(make_url):
    source_url, warehouse_url = make_url("mariadb", "src"), make_url("postgresql", "wh")
    create_source(source_url, "mariadb").dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    execute(
        source_url,
        """UPDATE items SET payload = '{"a": [1, 2, {"y": "ü", "z": null}], "b": 1}'
                           WHERE id = 1""",
    )

    assert diff_table(config, "items").differences == 0

    execute(
        source_url,
        """UPDATE items SET payload = '{"a": [2, 1, {"y": "ü", "z": null}], "b": 1}'
                           WHERE id = 1""",
    )
    result = diff_table(config, "items")
    assert [(d.key, d.columns) for d in result.changed] == [((1,), ["payload"])]


@pytest.mark.parametrize(("source_kind", "warehouse_kind"), PAIRS)
def test_keys_only_finds_hard_deletes_and_ignores_edits(make_url, source_kind, warehouse_kind):
    source_url, warehouse_url = make_url(source_kind, "src"), make_url(warehouse_kind, "wh")
    create_source(source_url, source_kind).dispose()
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    execute(source_url, "DELETE FROM items WHERE id = 5")
    execute(warehouse_url, "UPDATE items SET name = 'edited' WHERE id = 1")

    result = diff_table(config, "items", DiffOptions(keys_only=True))

    assert [d.key for d in result.extra] == [(5,)]
    assert result.missing == [] and result.changed == []


def test_empty_json_documents_differ_from_null_and_from_each_other(make_url):
    """PostgreSQL's jsonb hash is 0 for NULL and for every document without a scalar."""
    source_url, warehouse_url = make_url("postgresql", "src"), make_url("postgresql", "wh")
    create_source(source_url, "postgresql").dispose()
    execute(
        source_url,
        """UPDATE items SET payload = '{}' WHERE id = 1""",
        """UPDATE items SET payload = '[]' WHERE id = 2""",
        """UPDATE items SET payload = '{"a": []}' WHERE id = 3""",
    )
    config = make_config(source_url, warehouse_url)
    copy_to_warehouse(config)
    assert diff_table(config, "items").differences == 0

    execute(
        warehouse_url,
        "UPDATE items SET payload = NULL WHERE id = 1",
        """UPDATE items SET payload = '[[]]' WHERE id = 2""",
        """UPDATE items SET payload = '{"a": [[]]}' WHERE id = 3""",
    )
    result = diff_table(config, "items")
    assert sorted((d.key, d.columns) for d in result.changed) == [
        ((1,), ["payload"]),
        ((2,), ["payload"]),
        ((3,), ["payload"]),
    ]
