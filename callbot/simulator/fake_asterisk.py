"""Asterisk's ARI, played by the simulator, for calls that the server controls through its Stasis application.

It serves what callbot uses of ARI as Asterisk documents and implements it (``rest-api/api-docs``,
``res/ari/resource_channels.c``, ``resource_bridges.c``): HTTP basic auth (or ``api_key``), ``{"message": ...}``
errors with Asterisk's status codes (404 unknown channel, 409 not in Stasis, 400/422 for bridges), the events
WebSocket ``/ari/events?app=...``, ``StasisStart``/``StasisEnd``/``ChannelHangupRequest``/``ChannelDestroyed``/
``ChannelDtmfReceived`` events, external media — AudioSocket (Asterisk connects to ``external_host`` and sends
``data`` as the UUID) or chan_websocket in server mode (``/media/<connection id>``, subprotocol ``media``) — and
what carries a decision out: channel variables, ``continue``, hang-up. Each simulated caller is one channel
entering ``Stasis(<app>)`` from the dialplan.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from callbot.simulator.audiosocket_peer import AudioSocketLine
from callbot.simulator.caller import Playback
from callbot.simulator.websocket_peer import ChanWebSocketWire, channel_sequence, unique_id

if TYPE_CHECKING:
    from callbot.simulator import SimulatedCall

ASTERISK_ID = "02:42:ac:11:00:02"


@dataclass
class Channel:
    id: str
    name: str
    caller: str = ""
    exten: str = ""
    state: str = "Ring"
    in_stasis: bool = True
    variables: dict[str, str] = field(default_factory=dict)
    channelvars: dict[str, str] = field(default_factory=dict)
    bridges: set[str] = field(default_factory=set)
    """Every bridge the channel was added to."""
    line: AriLine | None = None
    """The simulated caller whose channel this is (None for external media)."""
    media: Any = None
    """For an external-media channel: the media connection (AudioSocketLine or ChanWebSocketWire)."""

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "state": self.state,
            "protocol_id": "",
            "caller": {"name": "", "number": self.caller},
            "connected": {"name": "", "number": ""},
            "accountcode": "",
            "dialplan": {"context": "from-trunk", "exten": self.exten, "priority": 2, "app_name": "Stasis"},
            "creationtime": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+0000"),
            "language": "fr",
        }
        if self.channelvars:
            body["channelvars"] = self.channelvars
        return body


class FakeAsterisk:
    def __init__(self, host: str, port: int, username: str = "callbot", password: str = "callbot") -> None:
        self.host, self.port, self.username, self.password = host, port, username, password
        self.channels: dict[str, Channel] = {}
        self.bridges: dict[str, set[str]] = {}
        self.apps: dict[str, list[WebSocket]] = {}
        self.app_connected = asyncio.Event()
        self.requests: list[tuple[str, str, dict[str, str]]] = []
        """Every ARI request, as (method, path, query): what the server asked Asterisk to do."""
        self._media_waiting: dict[str, asyncio.Future[tuple[WebSocket, asyncio.Event]]] = {}
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[Any]] = set()

    # --- lifecycle ----------------------------------------------------------------------------------------

    async def __aenter__(self) -> FakeAsterisk:
        routes = [
            WebSocketRoute("/ari/events", self._events),
            WebSocketRoute("/media/{connection_id}", self._media),
            Route("/ari/channels/externalMedia", self._external_media, methods=["POST"]),
            Route("/ari/channels/{channel_id}/answer", self._answer, methods=["POST"]),
            Route("/ari/channels/{channel_id}/variable", self._variable, methods=["POST"]),
            Route("/ari/channels/{channel_id}/continue", self._continue, methods=["POST"]),
            Route("/ari/channels/{channel_id}", self._hangup, methods=["DELETE"]),
            Route("/ari/bridges", self._create_bridge, methods=["POST"]),
            Route("/ari/bridges/{bridge_id}/addChannel", self._add_channel, methods=["POST"]),
            Route("/ari/bridges/{bridge_id}", self._destroy_bridge, methods=["DELETE"]),
        ]
        config = uvicorn.Config(Starlette(routes=routes), host=self.host, port=self.port, log_level="warning")
        config.ws_per_message_deflate = False
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
            await asyncio.sleep(0.02)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._server is not None:
            self._server.should_exit = True
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def line(self, call: SimulatedCall) -> AriLine:
        return AriLine(self, call)

    async def wait_for_app(self, timeout: float) -> None:
        await asyncio.wait_for(self.app_connected.wait(), timeout)

    # --- ARI ----------------------------------------------------------------------------------------------

    def _authorized(self, headers: Any, query: Any) -> bool:
        expected = f"{self.username}:{self.password}"
        scheme, _, credentials = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "basic":
            with contextlib.suppress(ValueError):
                return base64.b64decode(credentials).decode() == expected
        return bool(query.get("api_key") == expected)

    async def _events(self, websocket: WebSocket) -> None:
        if not self._authorized(websocket.headers, websocket.query_params):
            await websocket.close(code=1008)
            return
        apps = [a for a in websocket.query_params.get("app", "").split(",") if a]
        if not apps:
            await websocket.close(code=1008)
            return
        offered = websocket.scope.get("subprotocols") or []
        await websocket.accept(subprotocol="ari" if "ari" in offered else None)
        for app in apps:
            self.apps.setdefault(app, []).append(websocket)
        self.app_connected.set()
        try:
            while True:
                await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            for app in apps:
                self.apps[app].remove(websocket)
            if not any(self.apps.values()):
                self.app_connected.clear()

    async def emit(self, app: str, kind: str, **fields: Any) -> None:
        event = {
            "type": kind,
            "timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "+0000",
            **fields,
            "asterisk_id": ASTERISK_ID,
            "application": app,
        }
        for websocket in list(self.apps.get(app, [])):
            with contextlib.suppress(WebSocketDisconnect, RuntimeError):
                await websocket.send_json(event)

    def _check(self, request: Request) -> Response | None:
        self.requests.append((request.method, request.url.path, dict(request.query_params)))
        if not self._authorized(request.headers, request.query_params):
            return JSONResponse(
                {"message": "Authentication required"},
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="Asterisk REST Interface"'},
            )
        return None

    def _stasis_channel(self, request: Request) -> Channel | Response:
        channel = self.channels.get(request.path_params["channel_id"])
        if channel is None:
            return JSONResponse({"message": "Channel not found"}, status_code=404)
        if not channel.in_stasis:
            return JSONResponse({"message": "Channel not in Stasis application"}, status_code=409)
        return channel

    async def _answer(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        channel = self._stasis_channel(request)
        if isinstance(channel, Response):
            return channel
        channel.state = "Up"
        return Response(status_code=204)

    async def _variable(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        channel = self._stasis_channel(request)
        if isinstance(channel, Response):
            return channel
        name = request.query_params.get("variable")
        if not name:
            return JSONResponse({"message": "Variable name is required"}, status_code=400)
        channel.variables[name] = request.query_params.get("value", "")
        return Response(status_code=204)

    async def _continue(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        channel = self._stasis_channel(request)
        if isinstance(channel, Response):
            return channel
        query = request.query_params
        place = {k: query[k] for k in ("context", "extension", "priority", "label") if k in query}
        await self._leave_stasis(channel, continued=place)
        return Response(status_code=204)

    async def _hangup(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        channel = self.channels.get(request.path_params["channel_id"])
        if channel is None:
            return JSONResponse({"message": "Channel not found"}, status_code=404)
        if "reason" in request.query_params and "reason_code" in request.query_params:
            return JSONResponse({"message": "The reason and reason_code can't both be specified"}, status_code=400)
        await self._destroy(channel, hung_up_by="ARI")
        return Response(status_code=204)

    async def _create_bridge(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        bridge_id = request.query_params.get("bridgeId") or uuid.uuid4().hex
        self.bridges[bridge_id] = set()
        body = {
            "id": bridge_id,
            "technology": "simple_bridge",
            "bridge_type": "mixing",
            "bridge_class": "stasis",
            "creator": "Stasis",
            "name": request.query_params.get("name", ""),
            "channels": [],
        }
        return JSONResponse(body)

    async def _add_channel(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        members = self.bridges.get(request.path_params["bridge_id"])
        channel = self.channels.get(request.query_params.get("channel", ""))
        if channel is None:
            return JSONResponse({"message": "Channel not found"}, status_code=400)
        if members is None:
            return JSONResponse({"message": "Bridge not found"}, status_code=404)
        if not channel.in_stasis:
            return JSONResponse({"message": "Channel not in Stasis application"}, status_code=422)
        members.add(channel.id)
        channel.bridges.add(request.path_params["bridge_id"])
        self._connect_media(request.path_params["bridge_id"])
        return Response(status_code=204)

    async def _destroy_bridge(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        if self.bridges.pop(request.path_params["bridge_id"], None) is None:
            return JSONResponse({"message": "Bridge not found"}, status_code=404)
        return Response(status_code=204)

    async def _external_media(self, request: Request) -> Response:
        if (refused := self._check(request)) is not None:
            return refused
        query = request.query_params
        for name in ("app", "external_host", "format"):
            if not query.get(name):
                return JSONResponse({"message": f"{name} cannot be empty"}, status_code=400)
        channel_id = query.get("channelId") or unique_id()
        if channel_id in self.channels:
            return JSONResponse({"message": "Channel with given unique ID already exists"}, status_code=409)
        transport, encapsulation = query.get("transport", "udp"), query.get("encapsulation", "rtp")
        if (encapsulation, transport) == ("audiosocket", "tcp"):
            if not query.get("data"):
                return JSONResponse({"message": "data can not be empty"}, status_code=400)
            host, _, port = query["external_host"].rpartition(":")
            if not host or not port.isdigit():
                return JSONResponse({"message": "external_host must be <host>:<port>"}, status_code=400)
            channel = Channel(channel_id, f"AudioSocket/{query['external_host']}-{query['data']}", state="Up")
            channel.channelvars = {"AUDIOSOCKET_UUID": query["data"], "AUDIOSOCKET_SERVICE": query["external_host"]}
        elif transport == "websocket" and query.get("connection_type") == "server":
            connection_id = str(uuid.uuid4())
            channel = Channel(channel_id, f"WebSocket/INCOMING/0x{uuid.uuid4().hex[:12]}", state="Up")
            channel.channelvars = {"MEDIA_WEBSOCKET_CONNECTION_ID": connection_id}
            self._media_waiting[connection_id] = asyncio.get_running_loop().create_future()
        else:
            return JSONResponse({"message": "The encapsulation and/or transport is not supported"}, status_code=501)
        channel.variables["format"] = query["format"]
        self.channels[channel_id] = channel
        await self.emit(query["app"], "StasisStart", args=[], channel=channel.json())
        return JSONResponse(channel.json())

    async def _media(self, websocket: WebSocket) -> None:
        """chan_websocket's server: one connection per external-media channel, subprotocol ``media``."""
        waiting = self._media_waiting.get(websocket.path_params["connection_id"])
        offered = websocket.scope.get("subprotocols") or []
        if waiting is None or waiting.done() or any(p != "media" for p in offered):
            await websocket.close(code=1008)  # Asterisk answers 404 / 409 / 400 before the upgrade
            return
        await websocket.accept(subprotocol="media" if offered else None)
        done = asyncio.Event()
        waiting.set_result((websocket, done))
        await done.wait()  # the media wire runs on this connection until the call is over

    # --- the calls ----------------------------------------------------------------------------------------

    def _connect_media(self, bridge_id: str) -> None:
        """When a caller and an external-media channel share a bridge, the media starts flowing."""
        members = [self.channels[c] for c in self.bridges[bridge_id] if c in self.channels]
        callers = [c for c in members if c.line is not None]
        medias = [c for c in members if c.line is None]
        if len(callers) == 1 and len(medias) == 1:
            line = callers[0].line
            if line is not None and line.media_channel is None:
                line.media_channel = medias[0]
                self._spawn(line.start_media(medias[0]))

    async def _leave_stasis(self, channel: Channel, continued: dict[str, str] | None = None) -> None:
        if not channel.in_stasis:
            return
        channel.in_stasis = False
        for members in self.bridges.values():
            members.discard(channel.id)
        if channel.line is not None:
            channel.line.left(continued)
        await self.emit(channel.line.app if channel.line else "callbot", "StasisEnd", channel=channel.json())

    async def _destroy(self, channel: Channel, hung_up_by: str) -> None:
        app = channel.line.app if channel.line else "callbot"
        await self.emit(app, "ChannelHangupRequest", cause=16, soft=False, channel=channel.json())
        await self._leave_stasis(channel)
        self.channels.pop(channel.id, None)
        if channel.line is not None:
            channel.line.report.asterisk.setdefault("caller_channel", f"hung up by {hung_up_by}")
        if channel.media is not None:
            await channel.media.close_media()
        await self.emit(app, "ChannelDestroyed", cause=16, cause_txt="Normal Clearing", channel=channel.json())

    def _spawn(self, work: Any) -> None:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


class _ServerConnection:
    """The fake Asterisk's end of a media WebSocket that the server opened."""

    def __init__(self, websocket: WebSocket, done: asyncio.Event) -> None:
        self.ws, self.done = websocket, done

    async def send(self, message: str | bytes) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            if isinstance(message, str):
                await self.ws.send_text(message)
            else:
                await self.ws.send_bytes(message)

    async def recv(self) -> str | bytes | None:
        try:
            message = await self.ws.receive()
        except (WebSocketDisconnect, RuntimeError):
            return None
        if message["type"] == "websocket.disconnect":
            return None
        return message.get("text") if message.get("text") is not None else message.get("bytes")

    async def close(self, code: int) -> None:
        with contextlib.suppress(WebSocketDisconnect, RuntimeError):
            await self.ws.close(code)
        self.done.set()


class AriLine:
    """One simulated caller whose channel the dialplan sends to ``Stasis(<app>)``."""

    linger_s = 5.0
    """After the bot's last words the caller holds on a moment, as callers do after "I'm putting you through" or
    "au revoir" (long enough for the bot's own hang-up to come first on a loaded machine)."""

    def __init__(self, fake: FakeAsterisk, call: SimulatedCall) -> None:
        self.fake, self.call, self.report = fake, call, call.report
        self.app = call.ari_app
        self.dtx = call.dtx
        number = next(channel_sequence)
        self.channel = Channel(f"{time.time():.0f}.{number}", f"PJSIP/trunk-{number:08x}", call.caller, call.called)
        self.channel.line = self
        self.channel_id = self.channel.id
        self.media_channel: Channel | None = None
        self.media: AudioSocketLine | ChanWebSocketWire | None = None
        self.started_at = time.monotonic()
        self._playback: Playback | None = None
        self._media_ready = asyncio.Event()
        self._left = asyncio.Event()
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    @property
    def marks(self) -> bool:
        return isinstance(self.media, ChanWebSocketWire)

    async def connect(self, playback: Playback) -> None:
        self._playback = playback
        self.fake.channels[self.channel.id] = self.channel
        await self.fake.wait_for_app(10)
        await self.fake.emit(self.app, "StasisStart", args=list(self.call.ari_args), channel=self.channel.json())
        ready = asyncio.ensure_future(self._media_ready.wait())
        left = asyncio.ensure_future(self._left.wait())
        await asyncio.wait({ready, left}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        ready.cancel()
        left.cancel()

    async def start_media(self, channel: Channel) -> None:
        """The caller is bridged with an external-media channel: Asterisk opens (or waits for) its media."""
        assert self._playback is not None
        if channel.name.startswith("AudioSocket/"):
            service, call_uuid = channel.channelvars["AUDIOSOCKET_SERVICE"], channel.channelvars["AUDIOSOCKET_UUID"]
            self.call.line_format = channel.variables.get("format", "slin")
            line = AudioSocketLine(self.report, service, self.call, call_uuid=uuid.UUID(call_uuid))
            line.dtmf_on_socket = False  # chan_audiosocket passes no DTMF to its socket
            try:
                await line.connect(self._playback)
            except OSError as exc:  # Asterisk: "Failed to connect to AudioSocket"; the channel fails
                self.report.peer_errors.append(f"AudioSocket connection to {service} failed: {exc}")
                return
            self.media = channel.media = line
            line.closed().add_done_callback(lambda _: self._media_closed())
        else:
            connection_id = channel.channelvars["MEDIA_WEBSOCKET_CONNECTION_ID"]
            try:
                websocket, done = await asyncio.wait_for(self.fake._media_waiting[connection_id], 10)
            except TimeoutError:
                self.report.peer_errors.append(f"nobody connected to /media/{connection_id}")
                return
            self.call.line_format = channel.variables.get("format", "ulaw")
            wire = ChanWebSocketWire(self.report, self.call, connection_id, channel.name)
            self.media = channel.media = wire
            connection = _ServerConnection(websocket, done)
            task = asyncio.ensure_future(wire.run(connection, self._playback))
            task.add_done_callback(lambda _: self._media_closed(done))
        self.started_at = time.monotonic()
        self._media_ready.set()

    def _media_closed(self, done: asyncio.Event | None = None) -> None:
        if done is not None:
            done.set()
        if not self._closed.done():
            self._closed.set_result(None)

    def left(self, continued: dict[str, str] | None) -> None:
        """The caller's channel left the application (continued in the dialplan, or hung up)."""
        if continued is not None:
            self.report.asterisk["continue"] = continued
            self.report.asterisk["caller_channel"] = "continued in the dialplan"
        self._left.set()
        if not self._closed.done():
            self._closed.set_result(None)

    async def send_audio(self, pcm: bytes) -> None:
        if self.media is not None and self.channel.in_stasis:
            await self.media.send_audio(pcm)

    async def send_dtmf(self, digit: str) -> None:
        event = {"digit": digit, "duration_ms": 100, "channel": self.channel.json()}
        await self.fake.emit(self.app, "ChannelDtmfReceived", **event)
        if isinstance(self.media, ChanWebSocketWire):  # the bridge passes the key on: chan_websocket sends DTMF_END
            await self.media.send_dtmf(digit)

    def mark_played(self, name: str) -> None:
        if isinstance(self.media, ChanWebSocketWire):
            self.media.mark_played(name)

    async def hang_up(self) -> None:
        if self.channel.in_stasis:
            await self.fake._destroy(self.channel, hung_up_by="the caller")

    def closed(self) -> asyncio.Future[None]:
        return self._closed

    async def finish(self) -> None:
        """Wait for the server to let the caller's channel go, then report what it asked of Asterisk."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._left.wait(), 15)
        variables = dict(self.channel.variables)
        self.report.asterisk["variables"] = variables
        if self.report.asterisk.get("continue") and variables.get("CALLBOT_ACTION") == "transfer":
            self.report.transfer_target = f"{variables.get('CALLBOT_TARGET_TYPE')}:{variables.get('CALLBOT_TARGET')}"
        # the server hangs its external media up and destroys its bridge once the call is over
        for _ in range(100):
            media_gone = self.media_channel is None or self.media_channel.id not in self.fake.channels
            if media_gone and not self.channel.bridges & self.fake.bridges.keys():
                break
            await asyncio.sleep(0.05)
        released = self.media_channel is None or self.media_channel.id not in self.fake.channels
        self.report.asterisk["media_released"] = released
        self.report.asterisk["bridges_left"] = len(self.channel.bridges & self.fake.bridges.keys())
        if isinstance(self.media, AudioSocketLine):
            await self.media.finish()
        elif isinstance(self.media, ChanWebSocketWire):
            self.media.stop()
