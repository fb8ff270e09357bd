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
    """Build the profiles (incremental unless --full), check them and refresh the API's cache.

    Exits 1 when the profile table's checks fail (the API then serves the last good snapshot).
    """
    import sqlalchemy as sa

    from pipewarden.db.engines import describe_connection_error, make_engine

    with configured(config) as loaded:
        from pipewarden.profiles.publish import build_and_publish

        engine = make_engine(loaded.warehouse.url, loaded.timeouts.engine())
        try:
            result = build_and_publish(engine, loaded, full=full)
        except ValueError as error:
            raise fail(str(error)) from None
        except sa.exc.OperationalError as error:
            raise fail(describe_connection_error(loaded.warehouse.url, error)) from None
        finally:
            engine.dispose()
    console.print(
        f"profiles: {result.mode} build {result.build_id}, {len(result.changed)} customers "
        f"changed, {result.rows} profiles, checks {result.status}"
    )
    if result.problems:
        console.print("problems: " + "; ".join(result.problems))
        raise typer.Exit(EXIT_FOUND)
