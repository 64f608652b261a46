"""``callbot call``: a simulated phone call against a running callbot server, over any of its transports.

``twilio``: as Twilio does it (signed webhook, TwiML, Media Streams, the ``<Connect action>`` callback).
``audiosocket``: as Asterisk's ``AudioSocket()`` does it (TCP, UUID first, 20 ms signed-linear frames).
``websocket``: as Asterisk's chan_websocket does it when it dials us (``Dial(WebSocket/...)``).
With ``ari`` set, the simulator also plays Asterisk's ARI: it sends the call to the server's Stasis application
and carries out what the server asks (external media, continue in the dialplan, hang up).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any, Literal

import httpx

from callbot.errors import CallbotError
from callbot.simulator.caller import Caller, PeerLine
from callbot.simulator.report import CallReport, read_wav_as_line_pcm, write_wav

__all__ = ["CallReport", "SimulatedCall", "place_call", "read_wav_as_line_pcm", "write_wav"]

Transport = Literal["twilio", "audiosocket", "websocket"]


class SimulatedCall:
    def __init__(
        self,
        url: str,
        audio: Path | None,
        *,
        transport: Transport = "twilio",
        dtmf: str = "",
        auth_token: str | None = None,
        api_token: str | None = None,
        speed: float = 1.0,
        caller: str = "+33612345678",
        called: str = "+33900000000",
        turn_timeout: float = 20.0,
        barge_in: bool = False,
        keys_first: bool = False,
        pause_s: float = 0.0,
        audiosocket: str | None = None,
        line_format: str = "",
        ari: Any = None,
        ari_app: str = "callbot",
        ari_args: tuple[str, ...] = (),
        dtx: bool = False,
        json_control: bool = False,
        media_auth: tuple[str, str] | None = None,
        callback_url: str | None = None,
    ) -> None:
        self.url = url.rstrip("/")
        self.audio = audio
        self.transport = transport
        self.options = {"dtmf": dtmf, "speed": speed, "turn_timeout": turn_timeout}
        self.options |= {"barge_in": barge_in, "keys_first": keys_first, "pause_s": pause_s}
        self.auth_token, self.api_token = auth_token, api_token
        self.caller, self.called = caller, called
        self.audiosocket, self.line_format, self.ari = audiosocket, line_format, ari
        self.ari_app, self.ari_args = ari_app, ari_args
        self.dtx, self.json_control, self.media_auth = dtx, json_control, media_auth
        self.callback_url = callback_url
        self.report = CallReport(transport=transport)

    async def run(self) -> tuple[CallReport, bytes]:
        speech = read_wav_as_line_pcm(self.audio) if self.audio else b""
        line = self._line()
        played = await Caller(line, speech, **self.options).call()  # type: ignore[arg-type]
        provider_call_id = getattr(line, "channel_id", None)
        if not self.report.call_id and provider_call_id:
            try:
                await self._find_call(provider_call_id)
            except httpx.HTTPError as exc:
                self.report.turns_error = f"the call could not be found: {exc.__class__.__name__}: {exc}"
        if self.report.call_id:
            try:
                await self._read_back()
            except httpx.HTTPError as exc:
                self.report.turns_error = f"the call could not be read back: {exc.__class__.__name__}: {exc}"
        if self.report.outcome is None:
            self.report.outcome = "transfer" if self.report.transfer_target else "hangup"
        return self.report, played

    def _line(self) -> PeerLine:
        if self.ari is not None:
            return self.ari.line(self)  # type: ignore[no-any-return]
        if self.transport == "twilio":
            from callbot.simulator.twilio_peer import TwilioLine

            return TwilioLine(
                self.url,
                self.report,
                caller=self.caller,
                called=self.called,
                auth_token=self.auth_token,
                callback_url=self.callback_url,
            )
        if self.transport == "audiosocket":
            from callbot.simulator.audiosocket_peer import AudioSocketLine

            return AudioSocketLine(self.report, self.audiosocket or _default_audiosocket(self.url), self)
        from callbot.simulator.websocket_peer import DialingWebSocketLine

        return DialingWebSocketLine(self.report, self.url, self)

    async def _find_call(self, provider_call_id: str) -> None:
        """The server's id for a call it created itself (Asterisk dialled it: only the channel id is ours)."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        async with httpx.AsyncClient(timeout=30) as http:
            response = await http.get(
                f"{self.url}/api/calls", params={"provider_call_id": provider_call_id, "limit": 1}, headers=headers
            )
        if response.status_code == 200 and response.json():
            self.report.call_id = response.json()[0]["id"]
        else:
            self.report.turns_error = f"GET /api/calls answered {response.status_code}"

    async def _read_back(self) -> None:
        """The call as the server recorded it (it is stored moments after the stream closes)."""
        headers = {"Authorization": f"Bearer {self.api_token}"} if self.api_token else {}
        report = self.report
        async with httpx.AsyncClient(timeout=30) as http:
            for _ in range(50):
                response = await http.get(f"{self.url}/api/calls/{report.call_id}", headers=headers)
                if response.status_code != 200:
                    report.turns_error = f"GET /api/calls answered {response.status_code}" + (
                        "; pass --api-token (callbot users token NAME)" if response.status_code == 401 else ""
                    )
                    return
                report.call = response.json()
                if report.call.get("status") == "completed":
                    break
                await asyncio.sleep(0.1)
        report.outcome = report.call.get("outcome")
        report.turns = report.call.get("turns", [])
        if report.transfer_target is None and self.transport != "twilio" and self.ari is None:
            # without ARI the dialplan goes on by itself: the decision is what the server recorded
            report.transfer_target = report.call.get("transfer_target")


def _default_audiosocket(url: str) -> str:
    host = httpx.URL(url).host or "127.0.0.1"
    return f"{host}:9092"


def place_call(
    url: str,
    audio: Path | None,
    *,
    ari_listen: str | None = None,
    ari_user: str = "callbot",
    ari_password: str = "callbot",
    **options: Any,
) -> tuple[CallReport, bytes]:
    """One simulated call; with ``ari_listen`` the simulator first plays Asterisk's ARI there and waits for the
    server's Stasis application to connect to it."""

    async def run() -> tuple[CallReport, bytes]:
        if ari_listen is None:
            return await SimulatedCall(url, audio, **options).run()
        from callbot.simulator.fake_asterisk import FakeAsterisk

        host, _, port = ari_listen.rpartition(":")
        async with FakeAsterisk(host or "127.0.0.1", int(port), ari_user, ari_password) as asterisk:
            try:
                await asterisk.wait_for_app(30)
            except TimeoutError as exc:
                raise CallbotError(
                    f"the server's ARI application did not connect to {ari_listen} within 30 s: start it with "
                    f"CALLBOT_ARI_URL=http://{ari_listen} and CALLBOT_ARI_PASSWORD set"
                ) from exc
            return await SimulatedCall(url, audio, ari=asterisk, **options).run()

    return asyncio.run(run())
