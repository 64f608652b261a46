"""The Asterisk REST Interface as callbot uses it: a few channel and bridge requests, and the application's event
WebSocket. Authentication is ARI's HTTP basic auth (``ari.conf`` user); errors come back as ``{"message": ...}``."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

import httpx
import websockets

from callbot.errors import CallbotError

log = logging.getLogger(__name__)

RECONNECT_S = (0.5, 1.0, 2.0, 5.0, 10.0)
"""Waits between attempts to reach ARI's event WebSocket; the last one repeats."""


class AriError(CallbotError):
    """Asterisk refused an ARI request (or could not be reached)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class AriClient:
    def __init__(self, base_url: str, username: str, password: str, app: str, http: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.app = app
        self._auth = httpx.BasicAuth(username, password)
        self._basic = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
        self._http = http

    async def request(
        self, method: str, path: str, params: dict[str, str] | None = None, body: dict[str, Any] | None = None
    ) -> Any:
        """One ARI request; its JSON answer (None for 204). AriError when Asterisk refuses or is unreachable."""
        url = f"{self.base_url}/ari{path}"
        try:
            response = await self._http.request(method, url, params=params, json=body, auth=self._auth, timeout=5.0)
        except httpx.HTTPError as exc:
            raise AriError(f"ARI {method} {path}: {exc.__class__.__name__}: {exc}") from exc
        if response.status_code >= 400:
            try:
                message = str(response.json().get("message", ""))
            except (ValueError, AttributeError):
                message = response.text[:200]
            raise AriError(f"ARI {method} {path}: {response.status_code} {message}", response.status_code)
        if response.status_code == 204 or not response.content:
            return None
        return response.json()

    # --- channels and bridges ----------------------------------------------------------------------------

    async def answer(self, channel_id: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/answer")

    async def set_variable(self, channel_id: str, variable: str, value: str) -> None:
        await self.request("POST", f"/channels/{channel_id}/variable", {"variable": variable, "value": value})

    async def continue_in_dialplan(
        self, channel_id: str, context: str | None = None, extension: str | None = None, priority: str | None = None
    ) -> None:
        """Leave the application for the dialplan: the given place, or the priority after ``Stasis()``."""
        params: dict[str, str] = {}
        if context:
            params["context"] = context
        if extension:
            params["extension"] = extension
        if priority:
            params["priority" if priority.isdigit() else "label"] = priority
        await self.request("POST", f"/channels/{channel_id}/continue", params)

    async def hangup(self, channel_id: str, reason: str = "normal") -> None:
        await self.request("DELETE", f"/channels/{channel_id}", {"reason": reason})

    async def create_bridge(self, bridge_id: str) -> None:
        await self.request("POST", "/bridges", {"type": "mixing", "bridgeId": bridge_id, "name": bridge_id})

    async def add_to_bridge(self, bridge_id: str, channel_id: str) -> None:
        await self.request("POST", f"/bridges/{bridge_id}/addChannel", {"channel": channel_id})

    async def destroy_bridge(self, bridge_id: str) -> None:
        await self.request("DELETE", f"/bridges/{bridge_id}")

    async def external_media(self, channel_id: str, params: dict[str, str]) -> dict[str, Any]:
        """Create an external-media channel (AudioSocket or WebSocket) in our application."""
        answer = await self.request(
            "POST", "/channels/externalMedia", {"app": self.app, "channelId": channel_id, **params}
        )
        if not isinstance(answer, dict):
            raise AriError("ARI POST /channels/externalMedia: no channel in the answer")
        return answer

    # --- events ------------------------------------------------------------------------------------------

    @property
    def events_url(self) -> str:
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/ari/events?" + urlencode({"app": self.app})

    def media_url(self, connection_id: str) -> str:
        """Asterisk's chan_websocket server endpoint for an external-media channel (not under /ari)."""
        parts = urlsplit(self.base_url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}/media/{connection_id}"

    async def events(self, on_state: Callable[[bool, str], None]) -> AsyncIterator[dict[str, Any]]:
        """The application's events, forever: reconnects with backoff when Asterisk restarts or is away.
        ``on_state(connected, detail)`` hears each connection and loss."""
        attempt = 0
        while True:
            try:
                async with websockets.connect(
                    self.events_url, additional_headers={"Authorization": self._basic}, compression=None
                ) as connection:
                    log.info("ARI application %r connected to %s", self.app, self.base_url)
                    on_state(True, f"application {self.app!r} connected to {self.base_url}")
                    attempt = 0
                    async for message in connection:
                        event = _event(message)
                        if event is not None:
                            yield event
                detail = "Asterisk closed the event WebSocket"
            except (OSError, websockets.WebSocketException, TimeoutError) as exc:
                detail = f"{exc.__class__.__name__}: {exc}"
            log.warning("ARI events at %s unavailable (%s); retrying", self.base_url, detail)
            on_state(False, f"ARI at {self.base_url} unreachable ({detail}); Asterisk calls go to its dialplan")
            await asyncio.sleep(RECONNECT_S[min(attempt, len(RECONNECT_S) - 1)])
            attempt += 1


def _event(message: str | bytes) -> dict[str, Any] | None:
    try:
        event = json.loads(message)
    except (ValueError, RecursionError):
        log.warning("ARI sent something that is not a JSON event: %r", str(message)[:200])
        return None
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        log.warning("ARI event without a type: %r", str(message)[:200])
        return None
    return event
