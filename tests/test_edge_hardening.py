"""What an attacker or a broken peer sends at the edge: replayed streams, callbacks for calls we never saw, bodies
too large, webhook floods, streams cut by a message too large, and calls that would never end on their own."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import websockets
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from callbot.access.limits import TokenBuckets
from callbot.app import create_app
from callbot.call.housekeeping import tidy_calls_once
from callbot.resources import load_resources
from callbot.simulator import SimulatedCall
from tests.test_bad_input import START, drain_until_closed, settings


@pytest.fixture
def client(tmp_path: Path, joe_voice: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path, joe_voice))) as test_client:
        yield test_client


def _incoming(client: TestClient, call_sid: str | None = None) -> str:
    form = {"CallSid": call_sid or "CA" + uuid.uuid4().hex, "From": "+33611111111", "To": "+33900000000"}
    response = client.post("/twilio/voice", data=form)
    assert response.status_code == 200, response.text
    return response.text.split("/twilio/media/")[1].split('"')[0]


def _one_turn(ws) -> None:
    """Start, press 3 (an answer from the menu), and hang up as Twilio does."""
    ws.send_text(json.dumps(START))
    assert json.loads(ws.receive_text())["event"] == "media"
    ws.send_text(json.dumps({"event": "dtmf", "streamSid": START["streamSid"], "dtmf": {"digit": "3"}}))
    ws.send_text(json.dumps({"event": "stop", "streamSid": START["streamSid"]}))
    drain_until_closed(ws)


def _stored(client: TestClient, call_id: str) -> dict:
    resources = client.app.state.resources  # type: ignore[attr-defined]
    for _ in range(100):
        row = client.portal.call(resources.store.get_call, call_id)  # type: ignore[union-attr]
        if row is not None and row.status not in ("ringing", "in_progress"):
            break
        time.sleep(0.05)
    return {"status": row.status, "outcome": row.outcome, "turns": len(row.turns), "degraded": row.degraded}


# --- media streams are single-use --------------------------------------------------------------------------


def test_a_finished_calls_media_stream_cannot_be_replayed(client):
    call_id = _incoming(client)
    with client.websocket_connect(f"/twilio/media/{call_id}") as ws:
        _one_turn(ws)
    before = _stored(client, call_id)
    assert before["status"] == "completed"
    # a captured handshake, replayed once the call ended: refused before a word is read
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect(f"/twilio/media/{call_id}") as ws:
        ws.send_text(json.dumps(START))
        ws.receive_text()
    assert refused.value.code == 1008
    assert _stored(client, call_id) == before, "the stored call does not move"
    assert client.app.state.resources.active_calls == {}  # type: ignore[attr-defined]


def test_the_same_incoming_call_webhook_twice_is_one_call(client):
    call_sid = "CA" + uuid.uuid4().hex
    first, again = _incoming(client, call_sid), _incoming(client, call_sid)
    assert first == again
    resources = client.app.state.resources  # type: ignore[attr-defined]
    rows = client.portal.call(lambda: resources.store.list_calls(provider_call_id=call_sid))  # type: ignore[union-attr]
    assert len(rows) == 1


def test_a_message_stream_is_granted_once_for_a_callback_about_a_call_we_never_saw(client):
    """A signed transfer callback for an unknown call id: the caller is taken care of (recorded now, a message
    stream granted) instead of being sent to a stream URL that is refused, then back to the callback."""
    call_id = uuid.uuid4().hex
    response = client.post(f"/twilio/transfer/{call_id}", data={"CallSid": "CA1", "DialCallStatus": "busy"})
    assert response.status_code == 200
    assert f"/twilio/media/{call_id}" in response.text, response.text
    with client.websocket_connect(f"/twilio/media/{call_id}") as ws:
        custom = {"callId": call_id, "mode": "mailbox", "reason": "no_agent"}
        ws.send_text(json.dumps({**START, "start": {**START["start"], "customParameters": custom}}))
        assert json.loads(ws.receive_text())["event"] == "media", "the message prompt is played"
        ws.send_text(json.dumps({"event": "stop", "streamSid": START["streamSid"]}))
        drain_until_closed(ws)
    assert client.post(f"/twilio/action/{call_id}", data={"CallSid": "CA1"}).text.count("<Hangup") == 1
    assert client.post("/twilio/action/not-a-call-id", data={"CallSid": "CA1"}).status_code == 404


# --- bodies and floods ---------------------------------------------------------------------------------------


def test_an_oversized_body_is_refused_before_it_is_read(tmp_path, joe_voice):
    with TestClient(create_app(settings(tmp_path, joe_voice))) as client:
        declared = client.post(
            "/twilio/voice",
            content=b"",
            headers={"Content-Type": "application/x-www-form-urlencoded", "Content-Length": str(99 * 1024 * 1024)},
        )
        assert declared.status_code == 413 and "larger than" in declared.json()["detail"]

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted as it comes
            for _ in range(40):
                yield b"CallSid=" + b"a" * 4096 + b"&"

        streamed = client.post(
            "/twilio/voice", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        assert streamed.status_code == 413
        api = client.post("/login", content=b"x" * (2 * 1024 * 1024), headers={"Content-Type": "text/plain"})
        assert api.status_code == 413


def test_the_webhook_rate_is_limited_per_source_and_refills():
    now = [0.0]
    buckets = TokenBuckets(rate_per_s=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.take("10.0.0.1") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("10.0.0.1") == pytest.approx(0.5)
    assert buckets.take("10.0.0.2") == 0, "another source has its own bucket"
    now[0] += 0.5
    assert buckets.take("10.0.0.1") == 0


def test_a_webhook_flood_from_one_address_is_refused_while_other_sources_get_through(serve):
    server = serve(CALLBOT_WEBHOOK_RATE_PER_S="1", CALLBOT_WEBHOOK_BURST="10")
    statuses: list[int] = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for index in range(40):
            response = http.post("/twilio/voice", data={"CallSid": f"CA{index:032d}", "From": "+33600000000"})
            statuses.append(response.status_code)
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) >= 1
    assert statuses[:10] == [200] * 10 and statuses.count(429) >= 20
    with httpx.Client(
        base_url=server.url, timeout=10, transport=httpx.HTTPTransport(local_address="127.0.0.2")
    ) as other:
        assert other.post("/twilio/voice", data={"CallSid": "CA" + "9" * 32}).status_code == 200
    calls = server.api.get("/api/calls", params={"limit": 100}).json()
    assert len(calls) == statuses.count(200) + 1, "a refused webhook leaves no call behind"
    assert "rate limit: POST /twilio/voice from 127.0.0.1 refused" in server.logs()


# --- a stream broken by a message too large goes to a human --------------------------------------------------


def test_a_frame_too_large_breaks_the_stream_but_the_caller_goes_to_a_human(serve):
    server = serve()

    async def call() -> tuple[int | None, str]:
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as http:
            twiml = (await http.post("/twilio/voice", data={"CallSid": "CA" + uuid.uuid4().hex})).text
            call_id = twiml.split("/twilio/media/")[1].split('"')[0]
            ws_url = server.url.replace("http", "ws") + f"/twilio/media/{call_id}"
            async with websockets.connect(ws_url, max_size=None) as ws:
                await ws.send(json.dumps(START))
                await ws.recv()
                await ws.send("x" * (1024 * 1024))  # 1 MB: larger than any Media Streams message
                with pytest.raises(websockets.ConnectionClosed):
                    while True:
                        await ws.recv()
                code = ws.close_code
            # Twilio then calls the <Connect action> URL with the caller still on the line
            return code, (await http.post(f"/twilio/action/{call_id}", data={"CallSid": "CA1"})).text + call_id

    code, answer = asyncio.run(call())
    assert code == 1009
    assert "<Hangup" not in answer and ">advisors</Enqueue>" in answer, answer
    call_id = answer[-32:]
    stored = server.api.get(f"/api/calls/{call_id}").json()
    assert stored["outcome"] == "transfer" and "stream_lost" in stored["degraded"]


# --- calls that would never end on their own -----------------------------------------------------------------


def test_stale_calls_are_closed_and_calls_in_progress_are_kept(tmp_path, joe_voice):
    async def scenario() -> dict[str, str]:
        resources = await asyncio.to_thread(load_resources, settings(tmp_path, joe_voice, stale_ringing_s=60.0))
        store = resources.store
        try:
            ids = {name: uuid.uuid4().hex for name in ("ringing_old", "ringing_new", "crashed", "carried", "done")}
            for call_id in ids.values():
                await store.create_call(
                    call_id,
                    provider="twilio",
                    provider_call_id="CA",
                    from_number="",
                    to_number="",
                    bot="b",
                    language="fr",
                )
            long_ago = datetime.now(UTC) - timedelta(hours=1)

            def age(session) -> None:
                from callbot.storage.tables import CallRow

                session.get(CallRow, ids["ringing_old"]).created_at = long_ago
                for name in ("crashed", "carried", "done"):
                    row = session.get(CallRow, ids[name])
                    row.status, row.created_at, row.seen_at = "in_progress", long_ago, long_ago
                session.get(CallRow, ids["done"]).status = "completed"

            await store._run(age)
            resources.active_calls[ids["carried"]] = object()  # type: ignore[assignment]  # this instance's call
            assert await tidy_calls_once(resources) == (1, 1)
            assert await tidy_calls_once(resources) == (0, 0), "closed once"
            return {name: (await store.get_call(call_id)).status for name, call_id in ids.items()}  # type: ignore[union-attr]
        finally:
            resources.active_calls.clear()
            await resources.close()

    assert asyncio.run(scenario()) == {
        "ringing_old": "expired",
        "ringing_new": "ringing",
        "crashed": "interrupted",
        "carried": "in_progress",
        "done": "completed",
    }


def test_the_served_app_expires_a_webhook_whose_stream_never_came(serve):
    server = serve(CALLBOT_STALE_RINGING_S="0.5", CALLBOT_CALL_HEARTBEAT_S="0.2")
    twiml = httpx.post(f"{server.url}/twilio/voice", data={"CallSid": "CA" + uuid.uuid4().hex}).text
    call_id = twiml.split("/twilio/media/")[1].split('"')[0]
    for _ in range(100):
        if server.api.get(f"/api/calls/{call_id}").json()["status"] == "expired":
            break
        time.sleep(0.1)
    assert server.api.get(f"/api/calls/{call_id}").json()["status"] == "expired"
    ws_url = server.url.replace("http", "ws") + f"/twilio/media/{call_id}"

    async def late_stream() -> None:
        async with websockets.connect(ws_url):
            pass

    with pytest.raises(websockets.InvalidStatus) as refused:  # closed before it is accepted: HTTP 403
        asyncio.run(late_stream())
    assert refused.value.response.status_code == 403, "an expired call's stream is refused"
    assert "closed as expired" in server.logs()


# --- ten good callers among ten hostile streams --------------------------------------------------------------

FUZZ_SHAPES: list[str | bytes] = [
    '{"event":["media"]}',
    '{"event":{"a":1}}',
    "[" * 10_000,
    json.dumps({**START, "start": {**START["start"], "mediaFormat": "x"}}),
    json.dumps(
        {**START, "start": {**START["start"], "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": "abc"}}}
    ),
    json.dumps({**START, "start": {**START["start"], "customParameters": [1]}}),
    '{"event":"media","media":{"payload":"%%%not base64"}}',
    '{"event":"dtmf","dtmf":{"digit":"xyz"}}',
    '{"event":"mark","mark":{"name":' + '"m"' * 3 + "}}",
    b"\x00\xff" * 500,
    "null",
    '{"event":"media","media":{"payload":"' + "A" * 70_000 + '"}}',
    "x" * (1024 * 1024),  # larger than any Media Streams message: the stream breaks (1009)
]


def _process_usage(pid: int) -> tuple[int, float]:
    """A process's resident memory (bytes) and CPU time so far (seconds)."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss = int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:"))) * 1024
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return rss, (int(fields[11]) + int(fields[12])) / ticks


async def _hostile_stream(url: str, offset: int) -> int | None:
    """A call whose stream sends every malformed shape (rotated), then hangs up; the close code it got."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        twiml = (await http.post("/twilio/voice", data={"CallSid": "CA" + uuid.uuid4().hex})).text
    call_id = twiml.split("/twilio/media/")[1].split('"')[0]
    async with websockets.connect(url.replace("http", "ws") + f"/twilio/media/{call_id}", max_size=None) as ws:
        await ws.send(json.dumps({**START, "start": {**START["start"], "customParameters": {"callId": call_id}}}))
        shapes = FUZZ_SHAPES[offset:] + FUZZ_SHAPES[:offset]
        try:
            for shape in shapes:
                await ws.send(shape)
                await asyncio.sleep(0.05)
            await ws.send(json.dumps({"event": "stop", "streamSid": START["streamSid"]}))
            await asyncio.wait_for(ws.wait_closed(), 30)
        except websockets.ConnectionClosed:
            pass
        return ws.close_code


def test_ten_good_calls_complete_among_ten_hostile_streams(serve):
    server = serve()
    # what is measured is what the calls cost, not the start-up: the bot's answers are synthesised (and the
    # voice's buffers grown) in the background after the server first answers
    for _ in range(600):
        if httpx.get(f"{server.url}/healthz", timeout=5).json()["answers_cached"]:
            break
        time.sleep(0.1)
    rss_before, cpu_before = _process_usage(server.process.pid)
    started = time.monotonic()

    async def together() -> tuple[list, list[int | None]]:
        good = [
            SimulatedCall(server.url, None, dtmf=key, api_token=server.token, turn_timeout=60).run()
            for key in "3030303030"
        ]
        hostile = [_hostile_stream(server.url, offset) for offset in range(10)]
        results = await asyncio.gather(*good, *hostile)
        return [r[0] for r in results[:10]], list(results[10:])

    reports, codes = asyncio.run(together())
    elapsed = time.monotonic() - started
    rss_after, cpu_after = _process_usage(server.process.pid)
    for report, key in zip(reports, "3030303030", strict=True):
        expected = ("answered", None) if key == "3" else ("transfer", "queue:advisors")
        assert (report.outcome, report.transfer_target) == expected, report.to_json()
        stored = server.api.get(f"/api/calls/{report.call_id}").json()
        assert stored["status"] == "completed" and [t["text"] for t in stored["turns"] if t["speaker"] == "dtmf"] == [
            key
        ]
    assert all(code in (1000, 1008, 1009) for code in codes), codes
    assert server.process.poll() is None, "the server survived"
    assert rss_after - rss_before < 150 * 1024 * 1024, f"RSS grew by {(rss_after - rss_before) >> 20} MiB"
    assert (cpu_after - cpu_before) / elapsed < 1.8, "the server stayed within the machine's two cores"
    logs = server.logs()
    assert "Traceback" not in logs and "rejected media stream message" in logs


def test_nul_characters_are_refused_at_the_edge_and_stripped_from_provider_forms(client):
    """PostgreSQL cannot store a NUL: without these checks a NUL in a search or an id was a 503, 'database
    unavailable', and a webhook's call was never stored."""
    assert client.get("/api/calls?provider_call_id=a%00").status_code == 400
    assert client.get("/api/mailbox/a%00b").json() == {"detail": "NUL characters are not accepted in a URL"}
    call_id = _incoming(client, "CA\x00" + uuid.uuid4().hex)
    resources = client.app.state.resources  # type: ignore[attr-defined]
    row = client.portal.call(resources.store.get_call, call_id)  # type: ignore[union-attr]
    assert row is not None and "\x00" not in row.provider_call_id
    fields = "&".join(f"f{i}=x" for i in range(200))
    crowded = client.post(
        "/twilio/voice", content=fields, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert crowded.status_code == 400
