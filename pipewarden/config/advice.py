"""Settings that are valid but cannot work as written: warnings at load, never errors."""

from datetime import timedelta

from pipewarden.config.durations import describe
from pipewarden.config.models import PipewardenConfig

#: How often each schedule class syncs (prefect.yaml's sync deployments).
SCHEDULE_INTERVALS = {
    "realtime": timedelta(minutes=5),
    "hourly": timedelta(hours=1),
    "daily": timedelta(days=1),
}


def config_warnings(config: PipewardenConfig) -> list[str]:
    """Each freshness threshold a table's schedule cannot meet, by key.

    Just before a sync the newest loaded row is at least one interval old whenever the source
    keeps changing: a threshold no longer than the interval fires on a healthy table.
    """
    warnings = []
    for name, table in config.tables.items():
        every = SCHEDULE_INTERVALS[table.schedule]
        for key in ("warn_after", "error_after"):
            limit: timedelta | None = getattr(table.freshness, key)
            if limit is not None and limit <= every:
                warnings.append(
                    f"tables.{name}.freshness.{key}: {describe(limit)} is not longer than the "
                    f"{table.schedule} schedule's interval ({describe(every)}): the data is that "
                    f"old before each sync, so the SLA fails on a healthy table; make it longer "
                    f"or sync more often"
                )
    return warnings
