"""`pipewarden ready CAMPAIGN`: may the campaign send now?"""

from __future__ import annotations

from typing import Annotated

import typer

from pipewarden.cli.common import EXIT_FOUND, ConfigOption, configured, console, fail, print_json


def ready(
    campaign: Annotated[
        str, typer.Argument(help="A campaign of the configuration.", metavar="NAME")
    ],
    config: ConfigOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the answer as JSON.")] = False,
) -> None:
    """`go` when every table, stream and profile field the campaign declares is within its SLA,
    has no open error incident and a clean last reconciliation; else `hold` with the reasons.

    Exits 0 on go, 1 on hold, 2 when pipewarden cannot tell (a bad name, no warehouse).
    """
    import sqlalchemy as sa

    from pipewarden.db.engines import describe_database_error, make_engine

    with configured(config) as loaded:
        from pipewarden.serve.ready import GO, readiness

        engine = make_engine(loaded.warehouse.url, loaded.timeouts.engine())
        try:
            answer = readiness(engine, loaded, campaign)
        except KeyError as error:
            raise fail(str(error.args[0])) from None
        except sa.exc.DBAPIError as error:
            raise fail(describe_database_error(loaded.warehouse.url, error)) from None
        finally:
            engine.dispose()
    if as_json:
        print_json(answer.as_dict())
    else:
        console.print(f"{campaign}: {answer.decision}")
        for reason in answer.reasons:
            console.print(f"  - {reason}")
    if answer.decision != GO:
        raise typer.Exit(EXIT_FOUND)
