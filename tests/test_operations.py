"""What a load balancer and an operator see of one instance: liveness, readiness, and a capacity beyond which a
new call goes straight to a human instead of waiting for a bot that cannot answer in time."""

from __future__ import annotations

import asyncio
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


def test_metrics_carry_the_process_the_build_the_components_and_the_mailbox_backlog(client):
    text = client.get("/metrics").text
    for line in (
        'callbot_component_up{component="database"} 1.0',
        'callbot_mailbox_backlog{kind="new"} 0.0',
        "process_resident_memory_bytes",
        "python_gc_objects_collected_total",
        "callbot_build_info{version=",
    ):
        assert line in text, line
    assert 'callbot_component_up{component="nlu"} 0.0' in text, "no Rasa in this test: NLU unavailable"


def test_the_cli_says_its_version() -> None:
    import subprocess
    import sys

    from callbot import __version__
    from tests.conftest import ROOT

    done = subprocess.run([sys.executable, "-m", "callbot.cli", "--version"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0 and done.stdout.strip() == f"callbot {__version__}"


def test_json_logs_carry_the_call_id_and_keep_the_callers_number_out_of_info_lines(serve):
    from callbot.simulator import SimulatedCall

    server = serve(CALLBOT_LOG_FORMAT="json")
    report, _ = asyncio.run(
        SimulatedCall(
            server.url, None, dtmf="3", caller="+33698765432", api_token=server.token, keys_first=True, barge_in=True
        ).run()
    )
    assert report.outcome == "answered"
    lines = [json.loads(line) for line in server.logs().splitlines() if line.strip()]
    assert lines and {"time", "level", "logger", "message", "call_id"} <= set(lines[0])
    of_the_call = [line for line in lines if f"[call {report.call_id}]" in line["message"]]
    assert len(of_the_call) >= 3 and all(line["call_id"] == report.call_id for line in of_the_call)
    assert any(line["logger"].startswith("uvicorn") for line in lines), "uvicorn's lines in the same format"
    assert not [line for line in lines if "98765432" in line["message"] and line["level"] != "DEBUG"]
