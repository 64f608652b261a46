"""Limits at the edge, before any route parses a request: the size of request bodies, the rate of the
telephony webhooks per source address, and no NUL character in a URL (400).

- A body larger than its limit is refused with 413 as soon as that is known: from ``Content-Length`` before a byte
  is read, or, for a chunked body, the moment the bytes received pass the limit. Telephony webhooks get a small
  limit (a provider's form is a few kilobytes), the bot folder's file editor a large one, everything else the
  default.
- The telephony webhooks (``/twilio/...``) accept a burst and then a steady rate per client address; beyond it, 429
  with ``Retry-After``. Signature checks stay the real defence; this only keeps a flood (a replayed signed request,
  a misconfigured provider) from filling the database and starving calls in progress.

The counters are per ``callbot serve`` process.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import HTTPException

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

WEBHOOK_PREFIX = "/twilio/"
WEBHOOK_MAX_BODY = 64 * 1024
"""A telephony provider's webhook form is a few kilobytes."""
MAX_SOURCES = 100_000
"""Client addresses tracked at most (the oldest go first): an address flood cannot grow the table."""


@dataclass(frozen=True, slots=True)
class BodyLimits:
    default: int
    large: int
    large_paths: tuple[str, ...] = ("/ops/config",)

    def for_path(self, path: str) -> int:
        if path.startswith(WEBHOOK_PREFIX):
            return min(WEBHOOK_MAX_BODY, self.default)
        return self.large if path in self.large_paths else self.default


class TokenBuckets:
    """A bucket of ``burst`` requests per key, refilled at ``rate_per_s``."""

    def __init__(self, rate_per_s: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst = rate_per_s, burst
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """0 when a request from ``key`` may go now (it is counted), else the seconds until one may."""
        now = self._clock()
        tokens, at = self._buckets.pop(key, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - at) * self.rate)
        wait = 0.0 if tokens >= 1 else (1 - tokens) / self.rate
        self._buckets[key] = (tokens - 1 if wait == 0 else tokens, now)
        while len(self._buckets) > MAX_SOURCES:
            self._buckets.popitem(last=False)
        return wait


class EdgeLimits:
    """The ASGI middleware applying both limits to HTTP requests (WebSocket messages have their own limit)."""

    def __init__(self, app: ASGIApp, bodies: BodyLimits, webhooks: TokenBuckets | None) -> None:
        self.app, self.bodies, self.webhooks = app, bodies, webhooks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        client = (scope.get("client") or ("?", 0))[0]
        if self.webhooks is not None and path.startswith(WEBHOOK_PREFIX) and scope.get("method") == "POST":
            wait = self.webhooks.take(client)
            if wait > 0:
                log.warning("rate limit: %s %s from %s refused", scope.get("method"), path, client)
                await _refuse(send, 429, "too many webhook requests from this address", math.ceil(wait))
                return
        if b"%00" in scope.get("query_string", b"") or "\x00" in path or b"%00" in scope.get("raw_path", b""):
            # no field of ours holds a NUL character, and PostgreSQL cannot store one
            await _refuse(send, 400, "NUL characters are not accepted in a URL")
            return
        limit = self.bodies.for_path(path)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            log.warning("body limit: %s from %s declares %d bytes (limit %d)", path, client, declared, limit)
            await _refuse(send, 413, f"the request body is larger than {limit} bytes")
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    log.warning("body limit: %s from %s sent more than %d bytes", path, client, limit)
                    raise HTTPException(status_code=413, detail=f"the request body is larger than {limit} bytes")
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _refuse(send: Send, status: int, detail: str, retry_after: int | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    # the client may still be sending its body: the connection closes after this answer
    headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
