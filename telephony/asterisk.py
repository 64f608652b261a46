"""Asterisk's ways in, started with the service: the AudioSocket listener and the ARI application."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from callbot.errors import ConfigError
from callbot.resources import Component, Resources
from callbot.settings import Settings
from telephony.ari_calls import AriCalls
from telephony.ari_client import AriClient
from telephony.audiosocket_server import parse_listen, serve_audiosocket

log = logging.getLogger(__name__)


def check_asterisk_settings(settings: Settings) -> None:
    """Refuse to start with Asterisk settings that cannot work together, naming the variable and the fix."""
    if settings.audiosocket_listen is not None:
        parse_listen(settings.audiosocket_listen)
    if settings.ari_url is None:
        return
    if not settings.ari_url.startswith(("http://", "https://")):
        raise ConfigError(f"CALLBOT_ARI_URL={settings.ari_url!r}: give Asterisk's HTTP server, e.g. http://pbx:8088")
    if settings.ari_password is None:
        raise ConfigError("CALLBOT_ARI_URL is set but CALLBOT_ARI_PASSWORD is not: give the ari.conf user's password")
    if settings.ari_media == "audiosocket":
        address = settings.ari_audiosocket_address or settings.audiosocket_listen
        if address is None:
            raise ConfigError(
                "CALLBOT_ARI_MEDIA=audiosocket needs CALLBOT_AUDIOSOCKET_LISTEN (and, when Asterisk reaches us at "
                "another address, CALLBOT_ARI_AUDIOSOCKET_ADDRESS=host:port)"
            )
        parse_listen(address)
        if settings.ari_media_format in ("ulaw", "alaw"):
            raise ConfigError(
                f"CALLBOT_ARI_MEDIA_FORMAT={settings.ari_media_format}: AudioSocket carries signed linear audio only "
                "(slin, slin16); use CALLBOT_ARI_MEDIA=websocket for G.711"
            )


async def start_asterisk(resources: Resources) -> Callable[[], Awaitable[None]]:
    """Start what the settings ask for; the function that stops it all (callers still in Stasis go back to
    the dialplan)."""
    settings = resources.settings
    server = await serve_audiosocket(resources) if settings.audiosocket_listen else None
    if server is not None:
        resources.health["audiosocket"] = Component("up", f"listening on {settings.audiosocket_listen}")
    app: AriCalls | None = None
    task: asyncio.Task[None] | None = None
    if settings.ari_url and settings.ari_password is not None:
        client = AriClient(
            settings.ari_url,
            settings.ari_username,
            settings.ari_password.get_secret_value(),
            settings.ari_app,
            resources.http,
        )
        app = AriCalls(resources, client)
        task = asyncio.create_task(app.run(), name="ari")
        resources.health["ari"] = Component("starting", f"application {settings.ari_app!r} at {settings.ari_url}")

    async def stop() -> None:
        if app is not None:
            await app.close()
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if server is not None:
            server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(server.wait_closed(), 5)

    return stop
