"""`pipewarden baseline reset`: restart a series' training after a backfill or a known change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

import typer

from pipewarden.cli.common import ConfigOption, configured, console, fail

baseline_app = typer.Typer(
    help="The anomaly detector's baselines.", no_args_is_help=True, add_completion=False
)


@baseline_app.command("reset")
def reset(
    table: Annotated[str, typer.Argument(help="A configured table.", metavar="TABLE")],
    metric: Annotated[
        str,
        typer.Argument(
            help="The metric whose baseline restarts (one the checks judge).", metavar="METRIC"
        ),
    ],
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="WHEN",
            help="Learn only from points at or after this instant (ISO 8601, UTC unless it "
            "has an offset; default: now).",
        ),
    ] = None,
    config: ConfigOption = None,
) -> None:
    """Forget the points before WHEN: the next checks learn the metric's normal from there."""
    from pipewarden.checks.monitoring.anomaly.resets import reset_baseline
    from pipewarden.checks.monitoring.scoring import ANOMALY_METRICS
    from pipewarden.checks.monitoring.volume import VOLUME
    from pipewarden.db.engines import cached_engine
    from pipewarden.records.migrate import ensure_tables

    metrics = [name for name, _ in ANOMALY_METRICS] + [VOLUME]
    if metric not in metrics:
        raise fail(f"unknown metric {metric!r}: the checks judge {', '.join(metrics)}")
    now = datetime.now(UTC)
    try:
        instant = datetime.fromisoformat(since) if since else now
    except ValueError:
        raise fail(
            f"--since {since!r}: expected an ISO 8601 instant such as 2024-03-05T14:00"
        ) from None
    instant = instant if instant.tzinfo else instant.replace(tzinfo=UTC)
    with configured(config, checks=False) as cfg:
        if table not in cfg.tables:
            raise fail(f"unknown table {table!r} (configured: {', '.join(cfg.tables)})")
        try:
            engine = cached_engine(cfg.warehouse.url, cfg.timeouts.engine())
            ensure_tables(engine)
            reset_baseline(engine, table, metric, instant, now)
        except Exception as error:  # noqa: BLE001 - shown without a traceback, secrets hidden
            raise fail(f"{type(error).__name__}: {error}") from None
    console.print(
        f"{table} {metric}: the detector learns from {instant.isoformat()} on; "
        "earlier points are no longer its history.",
        highlight=False,
    )
