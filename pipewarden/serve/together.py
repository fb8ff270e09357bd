"""The event receiver and the profile API on one port (`pipewarden serve`), or either alone."""

from __future__ import annotations

from typing import Literal

import anyio.to_thread
import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from pipewarden.config import PipewardenConfig
from pipewarden.events.app import create_app as create_receiver
from pipewarden.serve.heap import settle_heap
from pipewarden.serve.profiles_api import create_profiles_app

Part = Literal["receiver", "profiles"]


class _Together:
    """`/profiles…` and `/ready` to the API, everything else (and the lifespan) to the receiver."""

    def __init__(self, receiver: ASGIApp, profiles: Starlette) -> None:
        self.receiver, self.profiles = receiver, profiles

    def _closing(self, send: Send) -> Send:
        """The receiver's lifespan, the API's shutdown (its last counts) before it is told."""

        async def forward(message: Message) -> None:
            if message["type"].startswith("lifespan.shutdown."):
                await anyio.to_thread.run_sync(self.profiles.state.service.close)
            await send(message)

        return forward

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.receiver(scope, receive, self._closing(send))
            return
        path = scope.get("path", "")
        if scope["type"] == "http" and (path.startswith("/profiles") or path == "/ready"):
            await self.profiles(scope, receive, send)
        else:
            await self.receiver(scope, receive, send)


def create_app(config: PipewardenConfig, parts: set[Part], metrics_every: float = 10.0) -> ASGIApp:
    """Raises ValueError when a part asked for is not configured (no streams, no profiles)."""
    if "receiver" in parts and not config.streams:
        raise ValueError("the configuration declares no streams (streams: in pipewarden.yaml)")
    profiles = create_profiles_app(config) if "profiles" in parts else None
    receiver = create_receiver(config, metrics_every=metrics_every) if "receiver" in parts else None
    if receiver is not None and profiles is not None:
        return _Together(receiver, profiles)
    app = receiver or profiles
    assert app is not None
    return app


def serve(
    config: PipewardenConfig,
    parts: set[Part],
    host: str = "127.0.0.1",
    port: int = 8787,
    metrics_every: float = 10.0,
) -> None:
    app = create_app(config, parts, metrics_every)
    settle_heap()
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=30,
    )
