"""`pipewarden dashboards provision | export | reader-sql`: the Grafana dashboards as code."""

import json
from pathlib import Path
from typing import Annotated

import typer

from pipewarden.cli.common import ConfigOption, configured, console, errors, fail

dashboards_app = typer.Typer(
    help="Grafana dashboards over pipewarden's tables: provision, export, the read-only role.",
    no_args_is_help=True,
)

COLOURS = {"created": "green", "updated": "yellow", "unchanged": "dim"}


@dashboards_app.command()
def provision(
    config: ConfigOption = None,
    update_password: Annotated[
        bool,
        typer.Option(
            "--update-password",
            help="Send the datasource's password even if nothing else changed (after a rotation).",
        ),
    ] = False,
) -> None:
    """Create or update the datasource, the folder and the dashboards in Grafana (idempotent)."""
    from rich.table import Table

    from pipewarden.dashboards.grafana import ProvisionError
    from pipewarden.dashboards.provision import provision as run

    with configured(config) as cfg:
        if cfg.grafana is None:
            raise fail("the configuration has no grafana: section (url, token, …)")
        if cfg.grafana.warehouse_url is None:
            errors.print(
                "[yellow]warning:[/] grafana.warehouse_url is not set: Grafana connects with the"
                " warehouse URL and its rights; see `pipewarden dashboards reader-sql`",
                highlight=False,
            )
        try:
            done = run(cfg, update_password=update_password)
        except ProvisionError as error:
            raise fail(str(error)) from None
    view = Table(title=f"Grafana {done.grafana_version} at {cfg.grafana.url}", title_justify="left")
    for column in ("kind", "title", "action", "detail"):
        view.add_column(column)
    for change in done.changes:
        colour = COLOURS.get(change.action, "")
        view.add_row(change.kind, change.title, f"[{colour}]{change.action}[/]", change.detail)
    console.print(view)
    counts = {a: sum(c.action == a for c in done.changes) for a in COLOURS}
    console.print(", ".join(f"{n} {action}" for action, n in counts.items()) + ".")


@dashboards_app.command()
def export(
    directory: Annotated[
        Path,
        typer.Argument(help="Where to write one JSON file a dashboard.", metavar="FOLDER"),
    ],
    datasource_uid: Annotated[
        str | None,
        typer.Option(
            "--datasource-uid",
            metavar="UID",
            help="The datasource the panels use (default: the config's).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Write the dashboards' JSON, bound to the datasource, for Grafana's file provisioning."""
    from rich.table import Table

    from pipewarden.config.grafana import GrafanaConfig
    from pipewarden.dashboards import catalog
    from pipewarden.dashboards.provision import prefect_ui

    uid, flow_runs_at = datasource_uid, None
    if uid is None or config is not None:  # with the flag alone no configuration is needed
        with configured(config) as cfg:
            grafana = cfg.grafana
            flow_runs_at = prefect_ui(cfg)
        default = GrafanaConfig.model_fields["datasource_uid"].default
        uid = uid or (grafana.datasource_uid if grafana is not None else default)
    view = Table("file", "title", "panels", title=f"datasource uid {uid}", title_justify="left")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        for dashboard in catalog.dashboards(uid, flow_runs_at):
            path = directory / f"{dashboard['uid']}.json"
            path.write_text(json.dumps(dashboard, indent=2, ensure_ascii=False) + "\n", "utf-8")
            view.add_row(str(path), dashboard["title"], str(len(dashboard["panels"])))
    except OSError as error:
        raise fail(f"cannot write the dashboards to {directory}: {error.strerror}") from None
    console.print(view)


@dashboards_app.command("reader-sql")
def reader_sql(
    config: ConfigOption = None,
    role: Annotated[
        str | None,
        typer.Option(
            "--role",
            metavar="NAME",
            help="The role's name (default: grafana.warehouse_url's user).",
        ),
    ] = None,
) -> None:
    """Print the SQL that creates the read-only role for Grafana's datasource (run it as owner)."""
    from pipewarden.config.urls import parse_url
    from pipewarden.dashboards.reader_role import DEFAULT_ROLE, reader_role_sql

    with configured(config) as cfg:
        reader_url = cfg.grafana.warehouse_url if cfg.grafana else None
        try:
            database = parse_url(reader_url or cfg.warehouse.url).database
            user = parse_url(reader_url).username if reader_url else None
        except ValueError as error:
            raise fail(str(error)) from None
    if not database:
        raise fail("the warehouse URL names no database")
    name = role or user or DEFAULT_ROLE
    for statement in reader_role_sql(database, name):
        print(f"{statement};")
    print(
        f"-- then give it a password (psql: \\password {name}) and put it in grafana.warehouse_url"
    )
