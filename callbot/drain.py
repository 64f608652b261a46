"""Graceful stop: on SIGTERM the instance drains — ``/readyz`` answers 503 so the balancer sends no new call,
new calls that still reach it are sent back (Twilio: the webhook redirected through the balancer; Asterisk:
refused, so the dialplan's next step runs), and the calls in progress finish, their messages closed and
filed, for up to ``CALLBOT_DRAIN_TIMEOUT_S``. Then the server stops; a second SIGTERM (or Ctrl-C) stops it
at once."""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import time
from types import FrameType

import uvicorn

from callbot.resources import Resources

log = logging.getLogger(__name__)

STREAM_GRACE_S = 5.0
"""A call answered this recently may still open its media stream here: the drain waits for it."""


async def drain(resources: Resources, timeout_s: float, poll_s: float = 0.2) -> bool:
    """Take no new call and wait for those in progress; True when they all ended within ``timeout_s``."""
    resources.draining = True
    deadline = time.monotonic() + timeout_s
    log.warning("draining: no new calls; %d call(s) in progress may finish", len(resources.active_calls))

    def busy() -> bool:
        recently_answered = time.monotonic() - resources.last_answer_at < STREAM_GRACE_S
        return bool(resources.active_calls or resources.expected_streams) or recently_answered

    while busy() and time.monotonic() < deadline:
        await asyncio.sleep(poll_s)
    if resources.active_calls:
        log.error(
            "drain timeout after %.0f s: %d call(s) still in progress are cut (their callbacks reach another instance)",
            timeout_s,
            len(resources.active_calls),
        )
        return False
    log.warning("drained: no call in progress, stopping")
    return True


class DrainingServer(uvicorn.Server):
    """uvicorn, with SIGTERM draining the calls before the server stops."""

    def __init__(self, config: uvicorn.Config, resources: Resources) -> None:
        super().__init__(config)
        self.resources = resources
        self._drain: asyncio.Task[bool] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        await super().startup(sockets)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        timeout = self.resources.settings.drain_timeout_s
        if sig != signal.SIGTERM or self._drain is not None or self._loop is None or timeout <= 0:
            if self._drain is not None and not self.should_exit:
                log.warning("stopping now, without waiting for the calls in progress")
            super().handle_exit(sig, frame)
            return
        self._loop.call_soon_threadsafe(self._start_drain, timeout)

    def _start_drain(self, timeout: float) -> None:
        if self._drain is not None:
            return
        self._drain = asyncio.create_task(drain(self.resources, timeout), name="drain")
        self._drain.add_done_callback(lambda _: setattr(self, "should_exit", True))
