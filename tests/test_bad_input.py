"""Bad input at every door: each gets a clear error or a logged, bounded rejection, and never hurts other calls."""

from __future__ import annotations

import base64
import json
import logging
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from callbot.app import create_app
from callbot.call.stream import MAX_PROTOCOL_ERRORS
from callbot.errors import ConfigError
from callbot.settings import Settings
from tests.conftest import ROOT, TEST_PASSWORD, TTS_CACHE, open_bot

START = {
    "event": "start",
    "sequenceNumber": "1",
    "streamSid": "MZ" + "a" * 32,
    "start": {
        "streamSid": "MZ" + "a" * 32,
        "callSid": "CA" + "b" * 32,
        "tracks": ["inbound"],
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1},
    },
}


def settings(tmp_path: Path, joe_voice: Path, **overrides: object) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        models_dir=tmp_path / "models",
        bot_dir=open_bot("fr"),
        tts_fallback_voice=joe_voice,
        tts_cache_dir=TTS_CACHE,
        rasa_url="http://127.0.0.1:9",
        **overrides,
    )


@pytest.fixture
def client(tmp_path: Path, joe_voice: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path, joe_voice))) as test_client:
        yield test_client


def new_call(client: TestClient) -> str:
    response = client.post("/twilio/voice", data={"CallSid": "CA" + uuid.uuid4().hex, "From": "+33611111111"})
    assert response.status_code == 200
    return response.text.split("/twilio/media/")[1].split('"')[0]


def drain_until_closed(ws) -> None:
    """Read what the server still sends until it closes the stream, as Twilio does after 'stop'."""
    with pytest.raises(WebSocketDisconnect):
        for _ in range(100_000):
            ws.receive_text()


def authorize(client: TestClient, role: str = "ops") -> TestClient:
    """Give ``client`` an API token of a user with ``role`` (created in the app's database)."""
    users = client.app.state.users  # type: ignore[attr-defined]
    username = f"{role}.tester"
    if username not in {u.username for u in users.list_users()}:
        users.add_user(username, TEST_PASSWORD, role)
    client.headers["Authorization"] = f"Bearer {users.new_api_token(username, 'tests')}"
    return client


def finished_call(client: TestClient, call_id: str) -> dict:
    """The call record once the server has closed the stream (that happens just after the peer leaves)."""
    if "Authorization" not in client.headers:
        authorize(client)
    for _ in range(100):
        call = client.get(f"/api/calls/{call_id}").json()
        if call["status"] == "completed":
            return call
        time.sleep(0.05)
    raise AssertionError(f"call {call_id} never completed: {call}")


def test_webhook_rejects_malformed_requests(client):
    assert client.post("/twilio/voice", data={"From": "+33600000000"}).status_code == 400
    response = client.post("/twilio/voice", json={"CallSid": "CA1"})
    assert response.status_code == 415 and "x-www-form-urlencoded" in response.json()["detail"]
    assert authorize(client).get("/api/calls/does-not-exist").status_code == 404


def test_media_stream_for_an_unknown_call_is_refused(client):
    with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/twilio/media/nope") as ws:
        ws.receive_text()
    assert refused.value.code == 1008


def test_bad_messages_are_rejected_one_by_one_and_the_call_goes_on(client, caplog):
    call_id = new_call(client)
    bad_messages = [
        "not json",
        "[1, 2]",
        json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": "AAAA"}}),  # before start
        json.dumps({"event": "teleport"}),
    ]
    with caplog.at_level(logging.WARNING), client.websocket_connect(f"/twilio/media/{call_id}") as ws:
        for message in bad_messages:
            ws.send_text(message)
        ws.send_text(json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"}))
        ws.send_text(json.dumps(START))
        greeting = json.loads(ws.receive_text())
        assert greeting["event"] == "media" and greeting["streamSid"] == START["streamSid"]
        ws.send_text(json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": "%%%not-base64"}}))
        ws.send_text(json.dumps({"event": "media", "media": {"payload": "A" * 100_000}}))
        ws.send_bytes(b"\x00\x01")
        ws.send_text(json.dumps({"event": "dtmf", "dtmf": {"digit": "x"}}))
        ws.send_text(json.dumps({"event": "stop", "streamSid": "MZ", "stop": {}}))
        drain_until_closed(ws)
    rejections = [r.getMessage() for r in caplog.records if "rejected media stream message" in r.getMessage()]
    assert len(rejections) == 8
    assert all(f"[call {call_id}]" in line for line in rejections)
    for expected in (
        "not JSON",
        "not a JSON object",
        "before 'start'",
        "unknown event 'teleport'",
        "not valid base64",
        "exceeds",
        "binary WebSocket frame",
        "invalid DTMF digit",
    ):
        assert any(expected in line for line in rejections), expected
    call = finished_call(client, call_id)
    assert call["outcome"] == "hangup"
    assert 'callbot_protocol_errors_total{provider="twilio"} 8.0' in client.get("/metrics").text


def test_a_flood_of_bad_messages_is_cut_off_without_affecting_the_next_call(client):
    call_id = new_call(client)
    with (
        pytest.raises(WebSocketDisconnect) as closed,
        client.websocket_connect(f"/twilio/media/{call_id}") as ws,
    ):
        for _ in range(MAX_PROTOCOL_ERRORS):
            ws.send_text("garbage")
        ws.receive_text()
    assert closed.value.code == 1008
    other = new_call(client)
    with client.websocket_connect(f"/twilio/media/{other}") as ws:
        ws.send_text(json.dumps(START))
        assert json.loads(ws.receive_text())["event"] == "media"
        payload = base64.b64encode(b"\xff" * 160).decode()
        ws.send_text(json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": payload}}))
        ws.send_text(json.dumps({"event": "dtmf", "streamSid": "MZ", "dtmf": {"digit": "0"}}))
        events = set()
        while "clear" not in events:
            events.add(json.loads(ws.receive_text())["event"])
    action = client.post(f"/twilio/action/{other}", data={"CallSid": "CA" + "c" * 32})
    assert f'/twilio/transfer/{other}">advisors</Enqueue>' in action.text


def test_action_callback_without_decision_still_hands_the_caller_to_a_human(client):
    call_id = new_call(client)  # the stream never opened: the caller must not be dropped
    response = client.post(f"/twilio/action/{call_id}", data={"CallSid": "CA" + "c" * 32})
    assert response.status_code == 200
    assert ">advisors</Enqueue>" in response.text


def test_signed_streams_only_when_a_token_is_configured(tmp_path, joe_voice):
    app = create_app(settings(tmp_path, joe_voice, twilio_auth_token="token-for-tests"))
    with TestClient(app) as client:
        assert client.post("/twilio/voice", data={"CallSid": "CA1"}).status_code == 403
        with pytest.raises(WebSocketDisconnect) as refused, client.websocket_connect("/twilio/media/x") as ws:
            ws.receive_text()
        assert refused.value.code == 1008


def test_an_invalid_bot_refuses_to_boot_with_file_and_key(tmp_path, joe_voice):
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "bots" / "fr", bot, ignore=shutil.ignore_patterns(".rasa"))
    text = (bot / "routing.yml").read_text().replace("failover_skill: general", "failover_skill: nobody")
    (bot / "routing.yml").write_text(text)
    with pytest.raises(ConfigError, match=r"routing\.yml: failover_skill: unknown skill 'nobody'"):
        create_app(settings(tmp_path, joe_voice).model_copy(update={"bot_dir": bot}))


def test_a_served_bot_with_an_invalid_time_zone_exits_with_the_message(tmp_path):
    bot = tmp_path / "bot"
    shutil.copytree(ROOT / "bots" / "fr", bot, ignore=shutil.ignore_patterns(".rasa"))
    text = (bot / "routing.yml").read_text().replace("timezone: Europe/Paris", "timezone: Paris")
    (bot / "routing.yml").write_text(text)
    completed = subprocess.run(
        [sys.executable, "-m", "callbot.cli", "serve", "--bot", str(bot), "--port", "9"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CALLBOT_DATA_DIR": str(tmp_path / "data")},
        timeout=60,
        check=False,
    )
    assert completed.returncode == 1
    assert "routing.yml: timezone: unknown time zone 'Paris'; use an IANA name such as Europe/Paris" in completed.stderr
