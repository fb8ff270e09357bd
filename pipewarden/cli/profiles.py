"""`pipewarden profiles …`: the profile table built in the warehouse."""

from __future__ import annotations

from typing import Annotated

import typer

from pipewarden.cli.common import EXIT_FOUND, ConfigOption, configured, console, fail

profiles_app = typer.Typer(
    help="One profile per customer, built in the warehouse.", no_args_is_help=True
)


@profiles_app.command("build")
def build(
    config: ConfigOption = None,
    full: Annotated[
        bool, typer.Option("--full", help="Rebuild every customer (default: only those touched).")
    ] = False,
) -> None:
    """Build the profiles (incremental unless --full), check them like a table (freshness,
    schema, segment sizes: results, incidents, Slack alerts) and refresh the API's cache.

    Exits 1 when a check fails (a failed schema check makes the API serve the last good
    snapshot).
    """
    import sqlalchemy as sa

    from pipewarden.db.engines import describe_database_error, make_engine

    with configured(config, deliver=True) as loaded:
        from pipewarden.profiles.build_lock import BuildLocked
        from pipewarden.profiles.publish import CacheNotRefreshed, build_checked

        engine = make_engine(loaded.warehouse.url, loaded.timeouts.engine())
        try:
            result, checks = build_checked(engine, loaded, full=full)
        except (ValueError, CacheNotRefreshed, BuildLocked) as error:
            raise fail(str(error)) from None
        except sa.exc.DBAPIError as error:
            raise fail(describe_database_error(loaded.warehouse.url, error)) from None
        finally:
            engine.dispose()
    console.print(
        f"profiles: {result.mode} build {result.build_id}, {len(result.changed)} customers "
        f"changed, {result.rows} profiles, checks {result.status}"
    )
    if result.unknown_customer_orders:
        console.print(
            f"profiles: {result.unknown_customer_orders} orders name no known customer "
            "(credited to no one; see the customer_keys check)",
            highlight=False,
        )
    failing = [c for c in checks if c.failing]
    for c in failing:
        console.print(f"{c.check} ({c.status}): {c.reason}", highlight=False)
    if result.problems or failing:
        raise typer.Exit(EXIT_FOUND)
