"""Read slots per source: Prefect global concurrency limits bound how many tasks read one
source at a time, across every deployment, flow run and worker."""

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from prefect import get_run_logger
from prefect.client.orchestration import get_client
from prefect.concurrency.sync import concurrency
from prefect.exceptions import MissingContextError, ObjectAlreadyExists

from pipewarden.config import PipewardenConfig


class ReadSlotTimeout(RuntimeError):
    """No read slot of a source came free in time; the message names the source and limit."""


def limit_name(source: str) -> str:
    """The global concurrency limit of a source's reads (as the Prefect UI lists it)."""
    return f"pipewarden-source-{source}"


def read_limits(config: PipewardenConfig) -> dict[str, int]:
    """Limit name → slots, for the sources with `max_concurrent_reads`."""
    return {
        limit_name(name): source.max_concurrent_reads
        for name, source in config.sources.items()
        if source.max_concurrent_reads is not None
    }


def ensure_read_limits(config: PipewardenConfig) -> dict[str, int]:
    """Create or update the sources' limits to what the configuration says (a flow does it
    before its tasks start; `pipewarden`'s deployments need no set-up step)."""
    limits = read_limits(config)
    if not limits:
        return limits
    with get_client(sync_client=True) as client:
        for name, slots in limits.items():
            try:
                client.upsert_global_concurrency_limit_by_name(name, slots)
            except ObjectAlreadyExists:  # another flow created it meanwhile: update it
                client.upsert_global_concurrency_limit_by_name(name, slots)
    return limits


@contextmanager
def read_slot(config: PipewardenConfig, source: str) -> Iterator[None]:
    """Hold one of the source's read slots (none configured: no wait)."""
    settings = config.sources[source]
    if settings.max_concurrent_reads is None:
        yield
        return
    name = limit_name(source)
    timeout = settings.read_slot_timeout.total_seconds()
    logger = _logger()
    logger.info(
        "waiting for a read slot of source %s (limit %s: %d at once)",
        source,
        name,
        settings.max_concurrent_reads,
    )
    acquired = False
    try:
        with concurrency(name, occupy=1, timeout_seconds=timeout, strict=True):
            acquired = True
            logger.info("holding a read slot of source %s", source)
            yield
    except TimeoutError:
        if acquired:  # the read's own time-out, not the wait for a slot
            raise
        raise ReadSlotTimeout(
            f"source {source}: no read slot came free within {timeout:.0f} s (limit {name}, "
            f"max_concurrent_reads {settings.max_concurrent_reads}); other runs held them"
        ) from None


def task_tags(config: PipewardenConfig, table: str, stage: str) -> list[str]:
    """Tags of a table's task run: filter runs by table, source or stage in the Prefect UI."""
    return [f"table:{table}", f"source:{config.table(table).source}", f"stage:{stage}"]


def _logger() -> logging.Logger | logging.LoggerAdapter[logging.Logger]:
    """The run's logger (shown in the Prefect UI), or the module's outside a run."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)
