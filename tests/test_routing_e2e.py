"""Routing end to end: `callbot call` with the keypad against a served app reaches each action, transfers carry
the right TwiML, hours and agent statuses change the outcome, and the hand-off webhook is called for real."""

from __future__ import annotations

import datetime
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from zoneinfo import ZoneInfo

import httpx
import pytest

from routing.bot_folder import load_bot_folder
from routing.explain import Hypothesis, explain
from routing.live import LiveState
from telephony.twilio_signature import compute_signature
from tests.conftest import ROOT, bot_copy, free_port, open_bot
from tests.test_call_e2e import place_call, silence_wav

BOT = load_bot_folder(open_bot("fr")).bot
FAST = ("--barge-in", "--speed", "8")
"""Press the keys as soon as the greeting starts (the caller's audio is empty), play the bot's audio fast."""


def turns_of(report: dict[str, Any], speaker: str) -> list[dict[str, Any]]:
    return [t for t in report["turns"] if t["speaker"] == speaker]


def test_keypad_reaches_answer_transfers_and_overflow(serve, tmp_path):
    server = serve()
    caller = silence_wav(tmp_path / "caller.wav", 0)

    answered = place_call(server, caller, "--dtmf", "3", *FAST)
    assert answered["outcome"] == "answered"
    assert turns_of(answered, "bot")[-1]["decision"]["rule"] == "intent:opening_hours"
    assert turns_of(answered, "bot")[-1]["decision"]["via"] == "menu:3"

    enqueued = place_call(server, caller, "--dtmf", "0", *FAST)
    call_id = enqueued["call_id"]
    assert enqueued["outcome"] == "transfer" and enqueued["transfer_target"] == "queue:advisors"
    assert f'<Enqueue action="{server.url}/twilio/transfer/{call_id}">advisors</Enqueue>' in enqueued["twiml"]
    queues = {q["name"]: q for q in server.api.get("/api/queues").json()}
    assert queues["advisors"]["waiting"] == 1, "the caller waits in the Twilio queue"
    # Twilio reports that the caller left the queue, bridged to an agent after 42 s
    result = httpx.post(f"{server.url}/twilio/transfer/{call_id}", data={"QueueResult": "bridged", "QueueTime": "42"})
    assert "<Hangup/>" in result.text
    queues = {q["name"]: q for q in server.api.get("/api/queues").json()}
    assert queues["advisors"]["waiting"] == 0
    call = server.api.get(f"/api/calls/{call_id}").json()
    assert call["transfer_result"] == "bridged" and call["transfer_wait_s"] == 42.0
    assert call["transfer_skill"] == "general"

    fraud = place_call(server, caller, "--dtmf", "5", *FAST)
    fraud_id = fraud["call_id"]
    assert fraud["transfer_target"] == "sip:sip:fraud@pbx.example.com"
    assert (
        f'<Dial action="{server.url}/twilio/transfer/{fraud_id}">'
        f'<Sip url="{server.url}/twilio/whisper/{fraud_id}">sip:fraud@pbx.example.com</Sip></Dial>'
    ) in fraud["twiml"]
    announcement = turns_of(fraud, "bot")[-1]
    assert announcement["text"] == "Je vous passe tout de suite la cellule fraude, merci de rester en ligne."
    whisper = httpx.post(f"{server.url}/twilio/whisper/{fraud_id}", data={"CallSid": "CA1"})
    assert "Suspicion de fraude. Numéro de l'appelant : + 3 3 6 1 2 3 4 5 6 7 8." in whisper.text
    busy = httpx.post(f"{server.url}/twilio/transfer/{fraud_id}", data={"DialCallStatus": "busy"})
    assert busy.status_code == 200 and '<Parameter name="mode" value="mailbox"/>' in busy.text
    assert server.api.get(f"/api/calls/{fraud_id}").json()["transfer_result"] == "busy"

    message = place_call(server, caller, "--dtmf", "9", *FAST)
    assert message["outcome"] == "overflow"
    last = turns_of(message, "bot")[-1]
    assert last["action"] == "overflow" and last["decision"]["reason"] == "caller_request"
    assert last["text"] == BOT.prompts.overflow.caller_request


def _closed_today(routing: dict[str, Any]) -> None:
    now = datetime.datetime.now(ZoneInfo(routing["timezone"])).replace(tzinfo=None, second=0, microsecond=0)
    closure = {
        "from": (now - datetime.timedelta(hours=2)).isoformat(),
        "to": (now + datetime.timedelta(hours=2)).isoformat(),
    }
    routing["calendars"]["office"] = {"closures": [{**closure, "reason": "Inventaire"}]}


def test_a_closed_centre_sends_callers_to_the_mailbox_with_the_closed_prompt(serve, tmp_path):
    server = serve(CALLBOT_BOT_DIR=str(bot_copy(tmp_path / "bot", _closed_today)))
    report = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "0", *FAST)
    assert report["outcome"] == "overflow"
    last = turns_of(report, "bot")[-1]
    assert last["text"] == BOT.prompts.overflow.closed
    assert last["decision"]["reason"] == "closed"
    [attempt] = last["decision"]["attempts"]
    assert attempt["queue"] == "advisors" and attempt["verdict"] == "closed"
    assert attempt["hours"].startswith("closure Inventaire")
    [item] = server.api.get("/api/mailbox").json()["items"]
    assert item["overflow_reason"] == "closed" and item["caller_number"] == "+33612345678"
    # the fraud cell is open around the clock: it still takes calls
    fraud = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "5", *FAST)
    assert fraud["outcome"] == "transfer"
    queues = {q["name"]: q for q in server.api.get("/api/queues").json()}
    assert queues["advisors"]["open"] is False and queues["advisors"]["accepting"] == "closed"
    assert queues["fraud"]["open"] is True


def test_agent_statuses_drive_routing_and_survive_a_restart(serve, tmp_path):
    server = serve()
    agents = {a["id"]: a for a in server.api.get("/api/agents").json()}
    fraud_agents = [agent_id for agent_id, a in agents.items() if "fraud" in a["skills"]]
    assert fraud_agents == ["s.simon", "t.laurent"]
    for agent_id in fraud_agents:
        response = server.api.put(f"/api/agents/{agent_id}/status", json={"status": "offline"})
        assert response.status_code == 200 and response.json()["persisted"] is True
    queues = {q["name"]: q for q in server.api.get("/api/queues").json()}
    assert queues["fraud"]["available_agents"] == 0 and queues["fraud"]["accepting"] == "no_agent"

    report = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "5", *FAST)
    assert report["outcome"] == "overflow"
    last = turns_of(report, "bot")[-1]
    assert last["decision"]["reason"] == "no_agent" and last["text"] == BOT.prompts.overflow.no_agent

    assert server.api.put("/api/agents/nobody/status", json={"status": "busy"}).status_code == 404
    assert server.api.put("/api/agents/s.simon/status", json={"status": "asleep"}).status_code == 422

    server.process.terminate()
    server.process.wait(timeout=20)
    again = serve(CALLBOT_DATA_DIR=str(server.data_dir))
    response = again.api.get("/api/agents")
    assert response.status_code == 200, response.text
    agents = {a["id"]: a for a in response.json()}
    assert agents["s.simon"]["status"] == "offline" and agents["t.laurent"]["status"] == "offline"
    assert agents["c.martin"]["status"] == "available"


class _HandoffReceiver(BaseHTTPRequestHandler):
    """A contact-centre hand-off endpoint: records each request and answers as told."""

    answers: ClassVar[list[tuple[int, dict[str, Any]]]] = []
    received: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).received.append((dict(self.headers), body))
        status, payload = type(self).answers.pop(0) if type(self).answers else (500, {})
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def handoff_receiver() -> Iterator[tuple[str, type[_HandoffReceiver]]]:
    handler = type("Receiver", (_HandoffReceiver,), {"answers": [], "received": []})
    port = free_port()
    httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/callbot/handoff", handler
    httpd.shutdown()


def _fraud_by_webhook(url: str) -> Any:
    def edit(routing: dict[str, Any]) -> None:
        routing["queues"]["fraud"]["target"] = {
            "type": "webhook",
            "value": url,
            "timeout_s": 2,
            "retries": 2,
            "secret_env": "CALLBOT_TEST_HANDOFF_SECRET",
        }

    return edit


def test_webhook_handoff_gives_the_agent_the_context_and_connects_where_it_says(serve, tmp_path, handoff_receiver):
    url, receiver = handoff_receiver
    receiver.answers = [(503, {}), (200, {"connect": {"type": "sip", "value": "sip:agent42@crm.example.com"}})]
    bot = bot_copy(tmp_path / "bot", _fraud_by_webhook(url))
    server = serve(CALLBOT_BOT_DIR=str(bot), CALLBOT_TEST_HANDOFF_SECRET="handoff-secret-for-tests")
    report = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "5", *FAST)

    assert report["outcome"] == "transfer"
    assert report["transfer_target"] == "sip:sip:agent42@crm.example.com"
    assert "<Sip" in report["twiml"] and "sip:agent42@crm.example.com</Sip>" in report["twiml"]
    assert len(receiver.received) == 2, "the 503 was retried"
    headers, body = receiver.received[-1]
    context = json.loads(body)
    assert context["call_id"] == report["call_id"]
    assert context["caller"] == "+33612345678"
    assert context["skill"] == "fraud" and context["queue"] == "fraud"
    assert context["rule"] == "menu:5"
    assert [t["speaker"] for t in context["transcript"]] == ["bot"], "the greeting; the key press is not speech"
    signature = dict(part.split("=", 1) for part in headers["X-Callbot-Signature"].split(","))
    expected = hmac.new(b"handoff-secret-for-tests", f"{signature['t']}.".encode() + body, hashlib.sha256)
    assert hmac.compare_digest(signature["v1"], expected.hexdigest())


def test_a_failing_handoff_webhook_ends_in_the_mailbox(serve, tmp_path, handoff_receiver):
    url, receiver = handoff_receiver
    receiver.answers = [(500, {}), (502, {}), (500, {})]
    bot = bot_copy(tmp_path / "bot", _fraud_by_webhook(url))
    server = serve(CALLBOT_BOT_DIR=str(bot), CALLBOT_TEST_HANDOFF_SECRET="handoff-secret-for-tests")
    report = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "5", *FAST)
    assert len(receiver.received) == 3, "first attempt and two retries"
    assert report["outcome"] == "overflow"
    last = turns_of(report, "bot")[-1]
    assert last["decision"]["rule"] == "handoff_failed" and "HTTP 500" in last["decision"]["error"]
    assert last["text"] == BOT.prompts.overflow.no_agent
    assert "hand-off to queue fraud failed" in server.logs() and f"[call {report['call_id']}]" in server.logs()


def test_transfer_callbacks_are_signed_when_a_token_is_set(serve, tmp_path):
    server = serve(CALLBOT_TWILIO_AUTH_TOKEN="token-for-tests")
    report = place_call(
        server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "5", "--auth-token", "token-for-tests", *FAST
    )
    url = f"{server.url}/twilio/whisper/{report['call_id']}"
    form = {"CallSid": "CA1"}
    assert httpx.post(url, data=form).status_code == 403
    signed = {"X-Twilio-Signature": compute_signature("token-for-tests", url, form)}
    assert httpx.post(url, data=form, headers=signed).status_code == 200


def test_routing_explain_on_the_real_calendar() -> None:
    """The example bot's own calendar: Christmas morning goes to the mailbox."""
    folder = load_bot_folder(ROOT / "bots" / "fr")
    at = datetime.datetime(2026, 12, 25, 10, tzinfo=ZoneInfo("Europe/Paris"))
    routed = explain(folder, Hypothesis("talk_to_advisor", at), LiveState(folder.routing).snapshot())
    assert routed.trace["attempts"][0]["hours"] == "public holiday Noël (2026-12-25)"


def test_two_instances_sharing_a_database_agree_on_agent_statuses(serve, postgres_url):
    first = serve(CALLBOT_DATABASE_URL=postgres_url)
    second = serve(CALLBOT_DATABASE_URL=postgres_url)
    assert first.api.put("/api/agents/s.simon/status", json={"status": "offline"}).status_code == 200

    def seen_by_second() -> bool:
        agents = {a["id"]: a for a in second.api.get("/api/agents").json()}
        return bool(agents["s.simon"]["status"] == "offline")

    deadline = time.monotonic() + 15
    while not seen_by_second():
        assert time.monotonic() < deadline, "the second instance never saw the status"
        time.sleep(0.5)


def test_a_transfer_presents_the_caller_id_the_queue_sets(serve, tmp_path):
    """routing.yml's collections queue dials a number with caller_id: the <Dial> says callerId (it was lost when
    the decision crossed to the action callback as text)."""
    server = serve()
    report = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "4", *FAST)
    collections = load_bot_folder(open_bot("fr")).routing.queues["collections"].target
    assert (collections.type, collections.caller_id) == ("number", "+33100000000")
    assert report["transfer_target"] == f"number:{collections.value}"
    assert (
        f'<Dial callerId="{collections.caller_id}" action="{server.url}/twilio/transfer/{report["call_id"]}">'
        in (report["twiml"])
    )
    stored = server.api.get(f"/api/calls/{report['call_id']}").json()
    assert stored["transfer"] == {"type": "number", "value": collections.value, "caller_id": collections.caller_id}


def test_a_twilio_call_routed_to_an_asterisk_only_target_leaves_a_message(serve, tmp_path):
    bot = bot_copy(tmp_path / "fr", lambda r: r["queues"]["advisors"].update(target={"dialplan": "callbot,advisors"}))
    server = serve(CALLBOT_BOT_DIR=str(bot))
    report = place_call(server, silence_wav(tmp_path / "caller.wav", 0), "--dtmf", "0", *FAST)
    assert report["outcome"] == "transfer"
    assert '<Parameter name="mode" value="mailbox"/>' in report["twiml"], "not a hang-up: a stream that takes a message"
    assert "has no target Twilio can reach" in server.logs()
