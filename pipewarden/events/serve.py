"""Running the receiver on uvicorn."""

import uvicorn

from pipewarden.config import PipewardenConfig
from pipewarden.events.app import create_app


def serve(
    config: PipewardenConfig,
    host: str = "127.0.0.1",
    port: int = 8787,
    metrics_every: float = 10.0,
) -> None:
    """Serve until stopped; SIGTERM/SIGINT finish the deliveries in hand first, and write the
    last metrics."""
    app = create_app(config, metrics_every=metrics_every)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
