"""Vosk failing in the middle of a call: the caller is moved to the keypad menu, and the failure is logged."""

from __future__ import annotations

import base64
import json
import logging

from fastapi.testclient import TestClient

from callbot.app import create_app
from callbot.errors import SpeechEngineError
from callbot.speech.vosk_asr import VoskRecognizer
from tests.test_bad_input import START, drain_until_closed, finished_call, new_call, settings


def test_recogniser_failure_mid_call_moves_the_caller_to_the_keypad(tmp_path, joe_voice, ko_model, monkeypatch, caplog):
    app = create_app(settings(tmp_path, joe_voice, vosk_model=ko_model))
    bot = app.state.resources.bot

    def crash(self: VoskRecognizer, pcm: bytes) -> None:
        raise SpeechEngineError("decoder crashed (injected)")

    with TestClient(app) as client, caplog.at_level(logging.WARNING):
        call_id = new_call(client)
        monkeypatch.setattr(VoskRecognizer, "accept", crash)
        with client.websocket_connect(f"/twilio/media/{call_id}") as ws:
            ws.send_text(json.dumps(START))
            assert json.loads(ws.receive_text())["event"] == "media"  # the greeting
            silence = base64.b64encode(b"\xff" * 160).decode()
            for _ in range(10):  # 200 ms of line audio: enough for one decoding batch
                ws.send_text(json.dumps({"event": "media", "streamSid": "MZ", "media": {"payload": silence}}))
            marks = 0
            while marks < 2:  # the greeting's mark, then the menu's
                if json.loads(ws.receive_text())["event"] == "mark":
                    marks += 1
            ws.send_text(json.dumps({"event": "stop", "streamSid": "MZ", "stop": {}}))
            drain_until_closed(ws)
        call = finished_call(client, call_id)
        metrics = client.get("/metrics").text
    menu = [t for t in call["turns"] if t["action"] == "menu"]
    assert menu and menu[0]["text"] == bot.menus["main"].prompt
    assert menu[0]["decision"]["rule"] == "speech_unavailable"
    assert "decoder crashed" in menu[0]["decision"]["error"]
    assert call["degraded"] == ["asr"], "the failure is recorded with the call"
    assert call["turns"][0]["decision"]["speech"] is True, "the call began with speech recognition"
    assert 'callbot_stage_failures_total{stage="asr"} 1.0' in metrics
    failures = [r.getMessage() for r in caplog.records if "speech recognition failed" in r.getMessage()]
    assert failures and f"[call {call_id}]" in failures[0]
