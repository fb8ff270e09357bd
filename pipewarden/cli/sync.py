"""`pipewarden sync`: copy what changed, table by table, with a progress bar."""

from typing import Annotated

import typer
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from pipewarden.cli.common import EXIT_ERROR, ConfigOption, configured, console, fail
from pipewarden.db.engines import cached_engine
from pipewarden.db.urls import redact_secrets
from pipewarden.records.sync_runs import SyncRun
from pipewarden.sync.run import SyncOptions, sync_table


def sync(
    tables: Annotated[
        list[str] | None, typer.Argument(help="Tables to sync (default: all).")
    ] = None,
    config: ConfigOption = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Re-read every row, ignoring the watermark.")
    ] = False,
    backfill_column: Annotated[
        list[str] | None,
        typer.Option("--backfill-column", help="Fill a new column for rows that did not change."),
    ] = None,
) -> None:
    """Copy what changed in the sources into the warehouse."""
    from checks.gate import gate_for
    from checks.report import failure_lines, failure_summary

    with configured(config) as cfg:
        names = tables or list(cfg.tables)
        unknown = [n for n in names if n not in cfg.tables]
        if unknown:
            raise fail(
                f"unknown table(s): {', '.join(unknown)} (configured: {', '.join(cfg.tables)})"
            )
        runs: list[SyncRun] = []
        failed: list[tuple[str, str]] = []
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[rows]}"),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        ) as progress:
            for name in names:
                bar = progress.add_task(name, total=None, rows="")

                def on_batch(run: SyncRun, bar: TaskID = bar) -> None:
                    progress.update(bar, rows=f"{run.rows_read:,} rows read")

                options = SyncOptions(
                    full_refresh=full_refresh,
                    backfill_columns=backfill_column or [],
                    on_batch=on_batch,
                    gate_factory=gate_for,
                )
                try:
                    runs.append(sync_table(cfg, name, options))
                except Exception as error:  # noqa: BLE001 - reported per table, then exit 2
                    failed.append((name, redact_secrets(f"{type(error).__name__}: {error}")))
                progress.remove_task(bar)
        if runs:
            console.print(sync_table_view(runs))
            engine = cached_engine(cfg.warehouse.url)
            for run in runs:
                for line in failure_lines(failure_summary(engine, run.run_id)):
                    console.print(f"  [yellow]quarantined[/] {line}", highlight=False)
        for name, message in failed:
            console.print(f"[bold red]{name} failed:[/] {message}", highlight=False, soft_wrap=True)
        if failed:
            raise typer.Exit(EXIT_ERROR)


def sync_table_view(runs: list[SyncRun]) -> Table:
    """The runs as a table: what was read, loaded, held back, and where the watermark went."""
    view = Table(title="sync", title_justify="left")
    for column in (
        "table",
        "read",
        "loaded",
        "unchanged",
        "quarantined",
        "watermark",
        "seconds",
        "schema changes",
    ):
        view.add_column(
            column,
            justify="right" if column not in ("table", "watermark", "schema changes") else "left",
        )
    for run in runs:
        changes = ", ".join(f"{c['change']} {c['column']}" for c in run.schema_changes) or ""
        view.add_row(
            run.table_name,
            f"{run.rows_read:,}",
            f"{run.rows_loaded:,}",
            f"{run.rows_unchanged:,}",
            f"{run.rows_quarantined:,}",
            str(run.new_watermark),
            f"{run.duration_seconds or 0:.2f}",
            changes,
        )
    return view
