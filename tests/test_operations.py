"""What a load balancer and an operator see of one instance: liveness, readiness, and a capacity beyond which a
new call goes straight to a human instead of waiting for a bot that cannot answer in time."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from callbot.app import create_app
from tests.test_bad_input import START, drain_until_closed, settings


@pytest.fixture
def client(tmp_path: Path, joe_voice: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path, joe_voice, max_calls=1))) as test_client:
        yield test_client


def _voice(client: TestClient) -> str:
    return client.post("/twilio/voice", data={"CallSid": "CA" + uuid.uuid4().hex, "From": "+33611111111"}).text


def test_an_instance_at_capacity_is_not_ready_and_hands_new_calls_to_a_human(client, caplog):
    assert client.get("/livez").json() == {"status": "alive"}
    assert client.get("/readyz").json() == {"ready": True, "reasons": [], "active_calls": 0, "max_calls": 1}
    first = _voice(client).split("/twilio/media/")[1].split('"')[0]
    with client.websocket_connect(f"/twilio/media/{first}") as ws:
        ws.send_text(json.dumps({**START, "start": {**START["start"], "customParameters": {"callId": first}}}))
        assert json.loads(ws.receive_text())["event"] == "media"
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["reasons"][0].startswith("at capacity: 1 calls")
        second = _voice(client)
        assert "<Stream" not in second and ">advisors</Enqueue>" in second, second
        assert "at capacity (1 calls), handing the call over" in caplog.text
        ws.send_text(json.dumps({"event": "stop", "streamSid": START["streamSid"]}))
        drain_until_closed(ws)
    assert client.get("/readyz").status_code == 200
    assert "<Stream" in _voice(client), "capacity again once the call ended"
