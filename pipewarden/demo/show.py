"""Runs the demo's stages through the Prefect flows and prints what each one found."""

import random
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.panel import Panel
from rich.table import Table

from pipewarden.config import PipewardenConfig, load_config
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
    from pipewarden.checks.validation.report import failure_lines

    lines = [line for s in summaries for line in failure_lines(s.get("failures", []))]
    if lines:
        console.print("  Held in quarantine (every row kept, with its reasons):")
    for line in lines:
        console.print(f"    [yellow]•[/] {line}", highlight=False)


def _flow_result(run: Callable[[], Any]) -> Any:
    """What a flow returned, also when it ended Failed because the data needs attention (the
    demo's data does, by design: the flow's state tells Prefect, the demo shows the result)."""
    from pipewarden.verdict import NeedsAttention

    try:
        return run()
    except NeedsAttention as found:
        return found.result


def _reconcile(console: Console, demo: DemoRound) -> None:
    """Hash comparison against the shop finds what no cursor can see, then repairs it."""
    from pipewarden.flows.reconcile import reconcile_flow

    console.print("\n[bold]3. Reconcile[/] orders against the shop (checksums on both sides)")
    found = _flow_result(lambda: reconcile_flow(table="orders", config_path=str(demo.config_path)))
    console.print(f"  dry run: {_diff_line(found)}")
    for kind, label in (
        ("extra", "hard-deleted in the shop, still in the warehouse"),
        ("missing", "in the shop, not in the warehouse"),
    ):
        keys = [k[0] for k in found[kind]]
        if keys:
            console.print(f"    {kind}: {len(keys)} ({label}): {_keys(keys)}")
    changed = [(c["key"][0], c["columns"]) for c in found["changed"]]
    if changed:
        console.print(
            f"    changed: {len(changed)}: "
            + ", ".join(f"{k} ({', '.join(cols)})" for k, cols in changed[:6])
        )
    fixed = _flow_result(
        lambda: reconcile_flow(table="orders", repair=True, config_path=str(demo.config_path))
    )
    repair = fixed["repair"]
    console.print(
        f"  repair: {repair['upserted']} rows re-read from the shop and merged, "
        f"{repair['deleted']} deleted; {repair['remaining']} differences remain"
    )


def _checks(console: Console, demo: DemoRound) -> None:
    """Freshness against each table's SLA, and anomalies against four weeks of history."""
    from pipewarden.flows.checks import checks_flow

    console.print("\n[bold]5. Checks[/] (freshness SLAs, anomalies against the metric history)")
    rows = _flow_result(lambda: checks_flow(config_path=str(demo.config_path)))
    colours = {"ok": "green", "warn": "yellow", "error": "red", "anomaly": "red"}
    attention = [r for r in rows if r["status"] in colours and r["status"] != "ok"]
    for r in attention:
        colour = colours.get(r["status"], "")
        console.print(
            f"  [{colour}]{r['status']:>7}[/] {r['table']} {r['check']}: {r['reason']}",
            highlight=False,
        )
    learning = [r for r in rows if r["status"] == "insufficient_history"]
    ok = len(rows) - len(attention) - len(learning)
    console.print(
        f"  [green]{'ok':>7}[/] {ok} other checks (freshness within SLA, metrics within "
        "their seasonal bands, columns like their last day)",
        highlight=False,
    )
    if learning:
        checks = ", ".join(f"{r['table']} {r['check']}" for r in learning)
        console.print(f"  [dim]{'waiting':>7} for more history: {checks}[/]", highlight=False)


def _alerts(console: Console, config: PipewardenConfig, config_path: Path, began: datetime) -> None:
    """What this round raised, what stayed quiet, and where the alerts are now."""
    from pipewarden.alerts.slack_message import fit_plain, render
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.alerts import OPENED, PENDING, SENDING, WORSE, recent_alerts
    from pipewarden.records.incidents import open_incidents

    with cached_engine(config.warehouse.url, config.timeouts.engine()).connect() as conn:
        raised = recent_alerts(conn, since=began)
        waiting = len(recent_alerts(conn, states=[PENDING, SENDING], limit=10_000))
        quiet = [i for i in open_incidents(conn).values() if i.opened_at < began <= i.last_seen_at]
    console.print(
        "\n[bold]6. Alerts[/] (one incident per table and check; each alert written to the "
        "outbox first, in the transaction of what caused it)"
    )
    if raised:
        view = Table(title=f"raised this round: {len(raised)}", title_justify="left")
        for column in ("alert", "table", "check", "to"):
            view.add_column(column)
        styles = {"opened": "red", "worse": "red", "recovered": "green", "notice": "cyan"}
        for a in raised:
            what = f"{a.kind} ({a.evidence.status})" if a.kind in (OPENED, WORSE) else a.kind
            style = styles.get(a.kind, "")
            to = a.channel or "default channel"
            view.add_row(f"[{style}]{what}[/]", a.evidence.table_name, a.evidence.check, to)
        console.print(view)
    else:
        console.print("  nothing new to tell this round")
    if quiet:
        names = ", ".join(f"{i.table_name} {i.check}" for i in quiet)
        console.print(
            f"  [dim]Still failing since an earlier round, not told again: {names}[/]",
            highlight=False,
        )
    if config.slack is None:
        if raised:
            preview = fit_plain(render(raised[-1]).text, 200)
            console.print(f"  The last would read in Slack: [italic]{preview}[/]", highlight=False)
        console.print(
            f"  {waiting} alerts in the outbox. This demo has no Slack: add a slack: section to "
            f"{config_path} to deliver them (`pipewarden alerts send`); "
            "`pipewarden alerts` lists them.",
            highlight=False,
        )


def _num(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _keys(keys: list[Any]) -> str:
    shown = ", ".join(str(k) for k in sorted(keys)[:8])
    return shown + (" …" if len(keys) > 8 else "")


def _diff_line(result: dict[str, Any]) -> str:
    counts = result["counts"]
    return (
        f"{counts['missing']} missing, {counts['extra']} extra, {counts['changed']} changed "
        f"over {result['rows_compared']:,} rows"
    )


def _synced(config_path: Path) -> list[dict[str, Any]]:
    """The sync flow's run summaries: called directly, a flow that ends Failed raises instead."""
    from pipewarden.flows.sync import sync_flow

    runs = sync_flow(config_path=str(config_path))
    if not isinstance(runs, list):
        raise TypeError(f"the sync flow returned {type(runs).__name__}, not its runs")
    return runs


def run_and_show(folder: Path, reset: bool, console: Console) -> DemoRound:
    began = datetime.now(UTC)
    demo, sources = prepare_round(folder, reset)
    config = load_config(demo.config_path)
    if demo.round_no == 1:
        from pipewarden.demo.history import seed_history

        seed_history(config.warehouse.url, config, datetime.now(UTC), random.Random(5))
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
        first = _synced(demo.config_path)
        demo.syncs.append(first)
        console.print(_sync_view("first sync", first))
        _show_failures(console, first)
        from pipewarden.demo.reference import seed_reference

        seed_reference(config.warehouse.url, config, datetime.now(UTC), np.random.default_rng(5))
    console.print("\n[bold]Meanwhile in the sources[/]")
    change_sources(demo, sources)
    for note in demo.source_notes[-3:]:
        console.print(f"  • {note}")
    console.print("\n[bold]2. Sync again[/] (a delta: only what changed, plus the lookback)")
    delta = _synced(demo.config_path)
    demo.syncs.append(delta)
    console.print(_sync_view("delta sync", delta))
    _show_failures(console, delta)
    added = [c["column"] for s in delta for c in s["schema_changes"] if c["change"] == "added"]
    if added:
        console.print(
            f"  The CRM's new column {', '.join(added)} was added to the warehouse and filled for "
            "the rows that changed; `pipewarden sync customers --backfill-column "
            f"{added[0]} --config {demo.config_path}` fills it for the others."
        )
    edit_warehouse_by_hand(demo, config.warehouse.url)
    for note in demo.warehouse_notes:
        console.print(f"  • {note}")
    _reconcile(console, demo)
    from pipewarden.demo.webhooks import show_webhooks

    show_webhooks(console, config, demo.round_no)
    _checks(console, demo)
    _alerts(console, config, demo.config_path, began)
    return demo
