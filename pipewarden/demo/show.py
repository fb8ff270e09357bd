"""Runs the demo's stages through the Prefect flows and prints what each one found."""

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from pipewarden.config import load_config
from pipewarden.demo.run import (
    DemoRound,
    change_sources,
    edit_warehouse_by_hand,
    prepare_round,
)


def _sync_view(title: str, summaries: list[dict[str, Any]]) -> Table:
    view = Table(title=title, title_justify="left")
    for column in (
        "table",
        "read",
        "loaded",
        "unchanged",
        "quarantined",
        "watermark",
        "schema changes",
    ):
        view.add_column(
            column,
            justify="left" if column in ("table", "watermark", "schema changes") else "right",
        )
    for s in summaries:
        changes = ", ".join(f"{c['change']} {c['column']}" for c in s["schema_changes"])
        view.add_row(
            s["table"],
            f"{s['rows_read']:,}",
            f"{s['rows_loaded']:,}",
            f"{s['rows_unchanged']:,}",
            f"{s['rows_quarantined']:,}",
            (s["new_watermark"] or "")[:19],
            changes,
        )
    return view


def _show_failures(console: Console, summaries: list[dict[str, Any]]) -> None:
    """What the schema checks held back, grouped by column and check."""
    from checks.report import failure_lines

    lines = [line for s in summaries for line in failure_lines(s.get("failures", []))]
    if lines:
        console.print("  Held in quarantine (every row kept, with its reasons):")
    for line in lines:
        console.print(f"    [yellow]•[/] {line}", highlight=False)


def run_and_show(folder: Path, reset: bool, console: Console) -> DemoRound:
    from flows.sync import sync_flow

    demo, sources = prepare_round(folder, reset)
    config = load_config(demo.config_path)
    console.print(
        Panel.fit(
            f"pipewarden demo, round {demo.round_no}\nsources and warehouse in {folder}\n"
            f"configuration: {demo.config_path}",
            style="bold",
        )
    )
    for note in demo.source_notes:
        console.print(f"  • {note}")
    if demo.round_no == 1:
        console.print("\n[bold]1. Sync[/] (first run: a full load through the Prefect flow)")
        first = sync_flow(config_path=str(demo.config_path))
        demo.syncs.append(first)
        console.print(_sync_view("first sync", first))
        _show_failures(console, first)
    console.print("\n[bold]Meanwhile in the sources[/]")
    change_sources(demo, sources)
    for note in demo.source_notes[-3:]:
        console.print(f"  • {note}")
    console.print("\n[bold]2. Sync again[/] (a delta: only what changed, plus the lookback)")
    delta = sync_flow(config_path=str(demo.config_path))
    demo.syncs.append(delta)
    console.print(_sync_view("delta sync", delta))
    _show_failures(console, delta)
    edit_warehouse_by_hand(demo, config.warehouse.url)
    for note in demo.warehouse_notes:
        console.print(f"  • {note}")
    console.print(
        "\nRun [bold]make demo[/] again to see the next round: the sources change and the sync "
        "copies only the delta."
    )
    return demo
