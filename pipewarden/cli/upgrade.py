"""`pipewarden upgrade`: bring pipewarden's own tables in the warehouse to this release."""

from typing import Annotated

import typer

from pipewarden.cli.common import ConfigOption, configured, console, errors, fail


def upgrade(
    config: ConfigOption = None,
    sql: Annotated[
        bool,
        typer.Option("--sql", help="Print the SQL the upgrade would run; change nothing."),
    ] = False,
) -> None:
    """Upgrade pipewarden's own tables in the warehouse to this release (every run does it
    on first use too); exit 2 if it cannot."""
    from pipewarden.config.urls import display_url
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.migrate import UpgradeFailed, upgrade_sql
    from pipewarden.records.migrate import upgrade as upgrade_tables

    with configured(config, checks=False) as cfg:
        engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
        where = display_url(engine.url)
        wait = cfg.timeouts.run_lock.total_seconds()

        def waiting() -> None:
            errors.print(
                f"{where}: another process is upgrading pipewarden's tables; waiting up to "
                f"{wait:g} s for it (timeouts.run_lock)",
                highlight=False,
                soft_wrap=True,
            )

        try:
            if sql:
                script = upgrade_sql(engine)
                print(script or f"-- {where}: pipewarden's tables are at the head: no SQL")
                return
            done = upgrade_tables(engine, wait, waiting)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            known = isinstance(error, UpgradeFailed)
            reason = str(error) if known else f"{type(error).__name__}: {error}"
            raise fail(f"upgrade of pipewarden's tables failed: {reason}") from None
    console.print(f"{where}: {done.describe()}", highlight=False, soft_wrap=True)
