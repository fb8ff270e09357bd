"""`pipewarden sync`: copy what changed, table by table, with a progress bar."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from pipewarden.cli.common import (
    EXIT_ERROR,
    EXIT_FOUND,
    ConfigOption,
    JsonOption,
    configured,
    console,
    fail,
    print_json,
)

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID
    from rich.table import Table

    from pipewarden.records.sync_runs import SyncRun


def sync(
    tables: Annotated[
        list[str] | None,
        typer.Argument(help="Tables to sync (default: all).", metavar="TABLE"),
    ] = None,
    config: ConfigOption = None,
    full_refresh: Annotated[
        bool, typer.Option("--full-refresh", help="Re-read every row, ignoring the watermark.")
    ] = False,
    backfill_column: Annotated[
        list[str] | None,
        typer.Option(
            "--backfill-column",
            metavar="COLUMN",
            help="Fill a new column for rows that did not change (repeat for more).",
        ),
    ] = None,
    json_output: JsonOption = False,
) -> None:
    """Copy what changed in the sources into the warehouse; exit 1 if rows were quarantined,
    2 if a table failed."""
    from pipewarden.checks.validation.report import failure_lines, failure_summary
    from pipewarden.config.urls import redact_secrets
    from pipewarden.db.engines import cached_engine
    from pipewarden.sync.run import SyncOptions, sync_table

    with configured(config, deliver=True) as cfg:
        names = tables or list(cfg.tables)
        unknown = [n for n in names if n not in cfg.tables]
        if unknown:
            raise fail(
                f"unknown table(s): {', '.join(unknown)} (configured: {', '.join(cfg.tables)})"
            )
        runs: list[SyncRun] = []
        failed: list[tuple[str, str]] = []
        with _progress_bars(shown=not json_output) as progress:
            for name in names:
                bar = progress.add_task(name, total=None, rows="")

                def on_batch(run: SyncRun, bar: TaskID = bar) -> None:
                    progress.update(bar, rows=f"{run.rows_read:,} rows read")

                options = SyncOptions(
                    full_refresh=full_refresh,
                    backfill_columns=backfill_column or [],
                    on_batch=on_batch,
                )
                try:
                    runs.append(sync_table(cfg, name, options))
                except Exception as error:  # noqa: BLE001 - reported per table, then exit 2
                    failed.append((name, redact_secrets(f"{type(error).__name__}: {error}")))
                progress.remove_task(bar)
        engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
        held = {r.run_id: failure_summary(engine, r.run_id) for r in runs if r.rows_quarantined}
    if json_output:
        print_json(
            {
                "runs": [run_dict(r, held.get(r.run_id, [])) for r in runs],
                "failed": [{"table": name, "error": message} for name, message in failed],
            }
        )
    else:
        if runs:
            console.print(sync_table_view(runs))
            for run in runs:
                for line in failure_lines(held.get(run.run_id, [])):
                    console.print(f"  [yellow]quarantined[/] {line}", highlight=False)
        for name, message in failed:
            console.print(f"[bold red]{name} failed:[/] {message}", highlight=False, soft_wrap=True)
    if failed:
        raise typer.Exit(EXIT_ERROR)
    if held:
        raise typer.Exit(EXIT_FOUND)


class _NoBars:
    """Progress bars that show nothing: a `--json` sync never loads rich."""

    def __enter__(self) -> _NoBars:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, **fields: Any) -> TaskID:
        return cast("TaskID", 0)

    def update(self, task: TaskID, **fields: Any) -> None:
        return None

    def remove_task(self, task: TaskID) -> None:
        return None


def _progress_bars(shown: bool) -> Progress | _NoBars:
    """A bar per table while it syncs (rows read so far), gone when done; none for `--json`."""
    if not shown:
        return _NoBars()
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.fields[rows]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


def run_dict(run: SyncRun, quarantined: list[dict[str, Any]]) -> dict[str, Any]:
    """One table's run as JSON-ready data (the `sync --json` shape)."""
    return {
        "table": run.table_name,
        "run_id": run.run_id,
        "status": run.status,
        "full_refresh": run.full_refresh,
        "rows_read": run.rows_read,
        "rows_loaded": run.rows_loaded,
        "rows_unchanged": run.rows_unchanged,
        "rows_quarantined": run.rows_quarantined,
        "batches": run.batches,
        "old_watermark": run.old_watermark,
        "new_watermark": run.new_watermark,
        "newest_source_cursor": run.newest_source_cursor,
        "duration_seconds": run.duration_seconds,
        "latency_p95_seconds": run.latency_p95_seconds,
        "schema_changes": run.schema_changes,
        "quarantined": quarantined,
    }


def sync_table_view(runs: list[SyncRun]) -> Table:
    """The runs as a table: what was read, loaded, held back, and where the watermark went."""
    from rich.table import Table

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
