"""`pipewarden reconcile TABLE`: find every row that differs from the source, and repair it.

Exit codes: 0 when no differences remain (none found, or all repaired), 1 when a dry run found
differences (or a budget stopped the run before it covered the table), 2 on error.
"""

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from pipewarden.cli.common import (
    EXIT_FOUND,
    EXIT_OK,
    ConfigOption,
    configured,
    console,
    fail,
)

if TYPE_CHECKING:
    from pipewarden.config import PipewardenConfig
    from pipewarden.reconcile.run import ReconcileReport


def _check_key_range(value: str | None) -> str | None:
    """Refuse a malformed or empty range before anything connects (the engine checks it again
    in the key column's own type, for text keys and the flows)."""
    from pipewarden.reconcile.keys import empty_range, split_key_range

    if value is None:
        return None
    try:
        low, high = split_key_range(value)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None
    if empty_range(low, high):
        raise typer.BadParameter(f"{value!r} is empty: its low end is above its high end")
    return value


def reconcile(
    table: Annotated[
        str, typer.Argument(help="The configured table to reconcile.", metavar="TABLE")
    ],
    config: ConfigOption = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Change nothing; report what repair would do.")
    ] = False,
    repair: Annotated[
        bool, typer.Option("--repair", help="Fix the warehouse: upsert from source, delete extras.")
    ] = False,
    key_range: Annotated[
        str | None,
        typer.Option(
            "--key-range",
            callback=_check_key_range,
            metavar="LOW:HIGH",
            help="LOW:HIGH on the first key column, both ends included (either end open).",
        ),
    ] = None,
    columns: Annotated[
        str | None,
        typer.Option("--columns", metavar="A,B,…", help="Compare only these columns."),
    ] = None,
    keys_only: Annotated[
        bool, typer.Option("--keys-only", help="Compare keys alone: the hard-delete sweep.")
    ] = False,
    max_seconds: Annotated[
        float | None,
        typer.Option(
            "--max-seconds", min=0, metavar="SECONDS", help="Stop after this long; report coverage."
        ),
    ] = None,
    max_diffs: Annotated[
        int | None,
        typer.Option("--max-diffs", min=1, metavar="N", help="Stop after this many differences."),
    ] = None,
    check_parity: Annotated[
        bool,
        typer.Option("--check-parity", help="Hash a sample column by column on both sides first."),
    ] = False,
    json_output: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    since: Annotated[
        str | None,
        typer.Option("--since", metavar="TIME", help="A stream's window start (ISO 8601)."),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option("--until", metavar="TIME", help="A stream's window end (ISO 8601)."),
    ] = None,
) -> None:
    """Find rows that differ between a source table and its warehouse copy; optionally repair.

    Given an event stream: the source keys it missed and the unexpected events over a time
    window; --repair backfills the missed ones from the source."""
    if dry_run and repair:
        raise fail("--dry-run and --repair exclude each other")
    picked = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    with configured(config, deliver=True) as cfg:
        if table in cfg.streams:
            from pipewarden.cli.events import reconcile_stream

            reconcile_stream(cfg, table, repair, since, until, json_output)
        if table not in cfg.tables:
            raise fail(f"unknown table {table!r} (configured: {', '.join(cfg.tables)})")
        with _failures_reported():
            if check_parity:
                _check_parity(cfg, table, picked, json_output)
            report = _reconcile(
                cfg,
                table,
                key_range=key_range,
                columns=picked,
                keys_only=keys_only,
                max_seconds=max_seconds,
                max_diffs=max_diffs,
                repair=repair,
            )
    if json_output:
        for part in report.json_parts():
            sys.stdout.write(part)
        sys.stdout.write("\n")
    else:
        _print_report(report.as_dict())
    raise typer.Exit(EXIT_OK if report.clean else EXIT_FOUND)


@contextmanager
def _failures_reported() -> Iterator[None]:
    """Any failure of the run is one line on stderr, secrets hidden, and exit code 2."""
    from pipewarden.config.urls import redact_secrets

    try:
        yield
    except typer.Exit:
        raise
    except Exception as error:  # noqa: BLE001 - any failure is reported, exit code 2
        raise fail(redact_secrets(f"{type(error).__name__}: {error}")) from None


def _check_parity(
    cfg: "PipewardenConfig", table: str, columns: list[str] | None, json_output: bool
) -> None:
    """`--check-parity`: a sample hashed column by column; suspicious columns stop the run."""
    from pipewarden.reconcile.parity import check_parity

    found = check_parity(cfg, table, columns=columns)
    if json_output:
        print(json.dumps({"parity": found.as_dict()}))
    else:
        _print_parity(found.as_dict())
    if found.suspicious:
        raise typer.Exit(EXIT_FOUND)


def _reconcile(
    cfg: "PipewardenConfig", table: str, key_range: str | None, **options: Any
) -> "ReconcileReport":
    """The comparison (and repair) itself, with the command line's options."""
    from pipewarden.reconcile.keys import split_key_range
    from pipewarden.reconcile.run import ReconcileOptions, reconcile_table

    bounds = split_key_range(key_range) if key_range is not None else None
    return reconcile_table(cfg, table, ReconcileOptions(key_range=bounds, **options))


def _print_parity(data: dict[str, object]) -> None:
    mismatches = data["mismatches"]
    assert isinstance(mismatches, dict)
    if not mismatches:
        console.print(f"parity: {data['rows_sampled']} sampled rows agree in every column")
        return
    for column, count in mismatches.items():
        console.print(f"parity: column [bold]{column}[/] differs in {count} sampled rows")


def _print_report(data: dict[str, object]) -> None:
    """The counts as a table, then the keys, the repair and why the run is incomplete."""
    repair = data["repair"]
    assert isinstance(repair, dict)
    _print_counts(data, repair)
    _print_keys(data)
    _print_repair(repair)
    if data["stopped_by"]:
        console.print(f"[yellow]stopped by {data['stopped_by']}[/]: coverage {data['coverage']}")
    problems = data.get("key_problems") or []
    assert isinstance(problems, list)
    for problem in problems:
        console.print(f"[yellow]incomplete[/]: {problem['message']}", highlight=False)


def _print_counts(data: dict[str, object], repair: dict[str, Any]) -> None:
    from rich.table import Table

    view = Table(title=f"reconcile {data['table']} ({data['action']})")
    counts = data["counts"]
    timings = data["timings"]
    assert isinstance(counts, dict) and isinstance(timings, dict)
    headers = ["missing", "extra", "changed", "rows compared", "coverage", "mode", "seconds"]
    row = [
        str(counts["missing"]),
        str(counts["extra"]),
        str(counts["changed"]),
        f"{data['rows_compared']:,}",
        f"{float(data['coverage']):.1%}",  # type: ignore[arg-type]
        str(data["mode"]),
        f"{timings.get('total', 0):.2f}",
    ]
    if repair["applied"]:
        headers.insert(3, "remaining")
        left = repair["remaining"] or 0
        row.insert(3, f"[bold red]{left}[/]" if left else "0")
    for header in headers:
        view.add_column(header, justify="right")
    view.add_row(*row)
    console.print(view)


def _print_keys(data: dict[str, object]) -> None:
    """The first 20 keys of each kind of difference."""
    for kind in ("missing", "extra"):
        keys = data[kind]
        assert isinstance(keys, list)
        for key in keys[:20]:
            console.print(f"  {kind} {key}", highlight=False)
    changed = data["changed"]
    assert isinstance(changed, list)
    for row in changed[:20]:
        console.print(f"  changed {row['key']} in {', '.join(row['columns'])}", highlight=False)


def _print_repair(repair: dict[str, Any]) -> None:
    """What the repair did (or would do), rows written older, and what it left."""
    from pipewarden.reconcile.repair import REASONS

    verb = "repaired" if repair["applied"] else "would repair"
    console.print(f"{verb}: {repair['upserted']} upserts, {repair['deleted']} deletes")
    for row in repair.get("backwards", [])[:20]:
        why = REASONS.get(row["reason"], row["reason"])
        console.print(f"  [yellow]written older[/] {row['key']}: {why}", highlight=False)
    if repair["applied"] and repair["remaining"]:
        console.print(
            f"[bold red]remaining:[/] {repair['remaining']} rows still differ after the repair",
            highlight=False,
        )
        for row in repair["remaining_keys"][:20]:
            console.print(f"  remaining {row['diff']} {row['key']}", highlight=False)
