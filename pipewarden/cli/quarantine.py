"""`pipewarden quarantine list | show | replay`: the rows checks held back, and releasing them."""

import json
from typing import Annotated, Any

import typer

from pipewarden.cli.common import (
    EXIT_ERROR,
    EXIT_FOUND,
    ConfigOption,
    JsonOption,
    configured,
    console,
    errors,
    fail,
    print_json,
)

#: The entry states (`pipewarden.records.quarantine`), here so the module loads without it.
HELD, RELEASED, SUPERSEDED = "held", "released", "superseded"

quarantine_app = typer.Typer(
    help="Rows held back by checks: list them, show why, replay them after a fix.",
    no_args_is_help=True,
)

ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason", metavar="CHECK", help="Only rows that failed this check (e.g. iso_currency)."
    ),
]


def _cut(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


ShowPiiOption = Annotated[
    bool,
    typer.Option(
        "--show-pii",
        help="Print customer values (pii columns, emails, phones) in clear, not as pii:… prefixes.",
    ),
]
#: Said on stderr whenever customer values are printed in clear.
PII_WARNING = (
    "warning: --show-pii prints customer data in clear; keep it out of tickets, chats and logs"
)


def _reasons(reasons: list[dict[str, Any]]) -> str:
    return "\n".join(
        f"{r.get('column')} {r.get('check')}: {_cut(str(r.get('value')), 40)}" for r in reasons
    )


def _shown_reasons(reasons: list[dict[str, Any]], hide: Any) -> list[dict[str, Any]]:
    """The reasons with their values as they may be shown (`hide`: a Redactor, or None)."""
    if hide is None:
        return reasons
    return [{**r, "value": hide.value(r.get("column"), r.get("value"))} for r in reasons]


@quarantine_app.command("list")
def list_(
    table: Annotated[str | None, typer.Argument(help="Only this table.", metavar="TABLE")] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """How many rows each table has held, released and superseded; exit 1 if any are held."""
    from pipewarden.db.engines import cached_engine, connect
    from pipewarden.records import quarantine as q
    from pipewarden.records.migrate import ensure_tables

    with configured(config, checks=False) as cfg:
        if table and table not in cfg.tables and table not in cfg.streams:
            raise fail(f"unknown table {table!r} (configured: {', '.join(cfg.tables)})")
        engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
        ensure_tables(engine)
        with connect(engine) as conn:
            rows = q.counts(conn, table)
    held = sum(r[HELD] for r in rows)
    if json_output:
        print_json(
            {
                "tables": [
                    {
                        "table": r["table"],
                        HELD: r[HELD],
                        RELEASED: r[RELEASED],
                        SUPERSEDED: r[SUPERSEDED],
                        "oldest_held": r["oldest_held"],
                    }
                    for r in rows
                ],
                HELD: held,
            }
        )
    elif not rows:
        console.print("The quarantine is empty.")
    else:
        from rich.table import Table

        out = Table("table", "held", "released", "superseded", "oldest held")
        for r in rows:
            oldest = r["oldest_held"].isoformat(timespec="seconds") if r["oldest_held"] else "-"
            out.add_row(r["table"], str(r[HELD]), str(r[RELEASED]), str(r[SUPERSEDED]), oldest)
        console.print(out)
    if held:
        raise typer.Exit(EXIT_FOUND)


@quarantine_app.command()
def show(
    table: Annotated[
        str, typer.Argument(help="The table whose held rows to show.", metavar="TABLE")
    ],
    config: ConfigOption = None,
    reason: ReasonOption = None,
    status: Annotated[
        str,
        typer.Option("--status", metavar="STATE", help="held, released, superseded or all."),
    ] = HELD,
    limit: Annotated[
        int, typer.Option("--limit", min=1, metavar="N", help="Show at most this many.")
    ] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    show_pii: ShowPiiOption = False,
) -> None:
    """The held rows of a table with every reason, oldest first.

    Customer values (columns with `pii: true`, emails, phone numbers) are shown as salted hash
    prefixes (`pii:3f9a…`) unless `--show-pii`: the quarantine keeps the row as read.
    """
    from rich.table import Table

    from pipewarden.db.engines import cached_engine, connect
    from pipewarden.records import quarantine as q
    from pipewarden.records.migrate import ensure_tables

    if status not in (HELD, RELEASED, SUPERSEDED, "all"):
        raise fail(f"--status {status!r}: expected held, released, superseded or all")
    with configured(config) as cfg:
        if table not in cfg.tables and table not in cfg.streams:
            raise fail(f"unknown table {table!r} (configured: {', '.join(cfg.tables)})")
        engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
        ensure_tables(engine)
        with connect(engine) as conn:
            entries = q.entries(
                conn,
                table,
                status=None if status == "all" else status,
                reason=reason,
                limit=limit,
            )
            held_in_all = q.held_count(conn, table) if reason and not entries else 0
        hide = None if show_pii else _redactor(cfg, table)
    if show_pii:
        errors.print(PII_WARNING, highlight=False, soft_wrap=True)
    if as_json:
        for e in entries:
            line = {
                "id": e.id,
                "key": e.primary_key if hide is None else hide.row(e.primary_key),
                "status": e.status,
                "reasons": _shown_reasons(e.reasons, hide),
                "row": e.row if hide is None else hide.row(e.row),
            }
            typer.echo(json.dumps(line, default=str))
        return
    if not entries:
        which = f"No {'' if status == 'all' else status + ' '}rows for {table}"
        if reason:
            which += f" with a reason matching {reason!r} ({held_in_all} held with other reasons)"
        console.print(which + ".", highlight=False, soft_wrap=True)
        return
    out = Table("id", "key", "status", "reasons", "quarantined at", show_lines=True)
    for e in entries:
        shown_key = e.primary_key if hide is None else hide.row(e.primary_key)
        key = ", ".join(f"{k}={v}" for k, v in shown_key.items())
        when = e.quarantined_at.isoformat(timespec="seconds")
        out.add_row(str(e.id), key, e.status, _reasons(_shown_reasons(e.reasons, hide)), when)
    console.print(out)


@quarantine_app.command()
def replay(
    table: Annotated[
        str, typer.Argument(help="The table whose held rows to replay.", metavar="TABLE")
    ],
    config: ConfigOption = None,
    where: Annotated[
        list[str] | None,
        typer.Option(
            "--where",
            metavar="COLUMN=VALUE",
            help="Only rows with this value as read; repeat to combine.",
        ),
    ] = None,
    reason: ReasonOption = None,
    by: Annotated[
        str | None,
        typer.Option("--by", metavar="NAME", help="Who releases the rows (default: your login)."),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be released; release and load nothing."),
    ] = False,
    show_pii: ShowPiiOption = False,
) -> None:
    """Check held rows again with the current schema and normalization; load those that pass.

    Exits 1 while rows stay held (as `quarantine list` does), so a script that replays after a
    fix learns that the fix did not cover every row.
    """
    from pipewarden.sync.quarantine_replay import ReplayError, parse_where
    from pipewarden.sync.quarantine_replay import replay as run_replay

    # A replay that releases the last held row closes the quarantine incident: announce it.
    with configured(config, deliver=not dry_run) as cfg:
        if table not in cfg.tables:
            raise fail(f"unknown table {table!r} (configured: {', '.join(cfg.tables)})")
        try:
            result = run_replay(
                cfg, table, where=parse_where(where or []), reason=reason, by=by, dry_run=dry_run
            )
        except ReplayError as error:
            raise fail(str(error)) from None
        except Exception as error:  # noqa: BLE001 - shown, never a traceback with secrets
            raise fail(f"{type(error).__name__}: {error}", EXIT_ERROR) from None
    if dry_run:
        console.print(
            f"{table} (dry run, nothing changed): {result.examined} held row(s) checked again — "
            f"{result.released} would be released, {result.superseded} superseded by a newer "
            f"version, {result.still_held} would stay held.",
            highlight=False,
            soft_wrap=True,
        )
        listed = list(zip(result.released_ids, result.released_keys))[:50]
        hide = None if show_pii or not listed else _redactor(cfg, table)
        if show_pii and listed:
            errors.print(PII_WARNING, highlight=False, soft_wrap=True)
        for entry, key in listed:
            shown = ", ".join(
                f"{k}={v}" for k, v in (key if hide is None else hide.row(key)).items()
            )
            console.print(f"  would release {shown} (entry {entry})", highlight=False)
        _exit_while_held(table, result.still_held, result.held_in_table)
        return
    console.print(
        f"{table}: {result.examined} held row(s) checked again — "
        f"{result.released} released by {result.released_by} ({result.loaded} changed the "
        f"warehouse), {result.superseded} superseded by a newer version, "
        f"{result.still_held} still held."
    )
    _exit_while_held(table, result.still_held, result.held_in_table)


def _exit_while_held(table: str, still_held: int, held_in_table: int) -> None:
    """Exit 1 while any of the table's rows stay held, the ones `--where` or `--reason` left
    out included: a filtered replay must not read as "the quarantine is clear"."""
    if held_in_table > still_held:
        console.print(
            f"{table}: {held_in_table} row(s) held in all (the filters left "
            f"{held_in_table - still_held} out).",
            highlight=False,
        )
    if held_in_table:
        raise typer.Exit(EXIT_FOUND)


def _redactor(cfg: Any, table: str) -> Any:
    """The table's redactor with the warehouse's salt (kept, when this made it)."""
    from pipewarden.config.pii import pii_columns
    from pipewarden.db.engines import cached_engine, connect
    from pipewarden.records.pii_salt import redactor

    engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
    with connect(engine) as conn:
        hide = redactor(conn, pii_columns(cfg.tables.get(table) or cfg.streams[table]))
        conn.commit()
    return hide
