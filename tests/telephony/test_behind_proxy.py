"""Behind a reverse proxy: TwiML points at the public URLs, and signatures are checked against them."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from callbot.app import create_app
from telephony.twilio_signature import compute_signature
from tests.test_bad_input import START, settings

TOKEN = "token-for-tests"
PUBLIC = "https://callbot.example.com"


def test_public_urls_in_twiml_and_signatures(tmp_path, joe_voice):
    app = create_app(settings(tmp_path, joe_voice, twilio_auth_token=TOKEN, public_base_url=PUBLIC + "/"))
    form = {"CallSid": "CA" + "d" * 32, "From": "+33622222222"}
    with TestClient(app) as client:
        local = client.post(
            "/twilio/voice",
            data=form,
            headers={"X-Twilio-Signature": compute_signature(TOKEN, "http://testserver/twilio/voice", form)},
        )
        assert local.status_code == 403, "signed for the internal URL, not the one the provider used"
        signed = {"X-Twilio-Signature": compute_signature(TOKEN, f"{PUBLIC}/twilio/voice", form)}
        twiml = client.post("/twilio/voice", data=form, headers=signed).text
        call_id = twiml.split("/twilio/media/")[1].split('"')[0]
        stream_url = f"wss://callbot.example.com/twilio/media/{call_id}"
        assert f'url="{stream_url}"' in twiml
        assert f'action="{PUBLIC}/twilio/action/{call_id}"' in twiml

        wrong = {"X-Twilio-Signature": compute_signature(TOKEN, f"ws://testserver/twilio/media/{call_id}")}
        with (
            pytest.raises(WebSocketDisconnect) as refused,
            client.websocket_connect(f"/twilio/media/{call_id}", headers=wrong) as ws,
        ):
            ws.receive_text()
        assert refused.value.code == 1008
        right = {"X-Twilio-Signature": compute_signature(TOKEN, stream_url)}
        with client.websocket_connect(f"/twilio/media/{call_id}", headers=right) as ws:
            ws.send_text(json.dumps(START))
            assert json.loads(ws.receive_text())["event"] == "media"
