"""Several ``callbot serve`` instances on one PostgreSQL database with a shared recordings folder, as behind a
round-robin balancer: decisions carried out by whichever instance gets the callback, a queue's ``max_length``
counted across instances, one e-mail per message, console edits followed, a killed instance's message filed
by the other, and SIGTERM draining an instance's calls."""

from __future__ import annotations

import asyncio
import shutil
import signal
import threading
import time
from email import message_from_bytes
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from aiosmtpd.controller import Controller

from callbot.simulator import SimulatedCall
from nlu.publishing import publish
from tests.conftest import Server, bot_copy, free_port, speech_clip
from tests.test_mailbox_e2e import _message_until_killed, items, line_audio, wait_for

pytestmark = pytest.mark.postgres

FRAUD_PLACES = 4


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


def _fraud_queue_of_four(routing: dict[str, Any]) -> None:
    """Both fraud agents busy (staffed, none free): calls wait in the fraud queue, four at most."""
    routing["queues"]["fraud"]["max_length"] = FRAUD_PLACES
    routing["queues"]["fraud"]["max_wait_s"] = 3600  # the length binds, not the estimated wait
    for agent in ("s.simon", "t.laurent"):
        routing["agents"][agent]["status"] = "busy"


def _pair(serve: Any, tmp_path: Path, postgres_url: str, **env: str) -> tuple[Server, Server]:
    """Two instances, each with its own copy of the bot folder (one after the other: the first synthesises the
    prompts into the cache the second reads; tests/test_two_instances.py starts two at the same instant)."""
    shared = {
        "CALLBOT_DATABASE_URL": postgres_url,
        "CALLBOT_RECORDINGS_DIR": str(tmp_path / "shared-recordings"),
        "CALLBOT_WEBHOOK_RATE_PER_S": "0",
        **env,
    }
    first, second = (
        serve(
            CALLBOT_BOT_DIR=str(bot_copy(tmp_path / f"bot-{n}" / "fr", _fraud_queue_of_four)),
            CALLBOT_INSTANCE_ID=f"instance-{n}",
            **shared,
        )
        for n in (1, 2)
    )
    return first, second


def test_twenty_calls_round_robin_with_every_callback_on_the_other_instance(serve, tmp_path, postgres_url):
    inbox = Inbox()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    try:
        first, second = _pair(
            serve,
            tmp_path,
            postgres_url,
            CALLBOT_SMTP_HOST="127.0.0.1",
            CALLBOT_SMTP_PORT=str(smtp_port),
            CALLBOT_SMTP_STARTTLS="false",
            CALLBOT_NOTIFY_TO="trainees@example.com",
            CALLBOT_MAILBOX_RETRY_S="1",
        )
        instances = (first, second)
        clips = sorted(Path(speech_clip("fr", "stp-fr-000.wav")).parent.glob("stp-fr-*.wav"))[:20]
        # calls 0, 1, 4, 5...: the fraud team (5), half on each instance; the others leave a message (9)
        keys = ["5" if n % 4 < 2 else "9" for n in range(20)]

        async def calls() -> list[Any]:
            async def one(n: int) -> Any:
                await asyncio.sleep(0.15 * n)  # a busy line: calls arrive over three seconds
                report, _ = await SimulatedCall(
                    instances[n % 2].url,
                    clips[n],
                    dtmf=keys[n],
                    keys_first=True,
                    barge_in=True,
                    caller=f"+336100000{n:02d}",
                    turn_timeout=60,
                    api_token=first.token,
                    callback_url=instances[(n + 1) % 2].url,
                ).run()
                return report

            return await asyncio.gather(*(one(n) for n in range(20)))

        reports = asyncio.run(calls())
        transferred = [r for r in reports if r.transfer_target == "sip:sip:fraud@pbx.example.com"]
        assert len(transferred) == FRAUD_PLACES, [(r.outcome, r.transfer_target, r.twiml[-120:]) for r in reports]
        assert all("<Dial" not in r.twiml or r in transferred for r in reports), "no failover transfer"
        overflowed = [r for r in reports if r not in transferred]
        assert [r.outcome for r in overflowed] == ["overflow"] * 16
        full = [r for r, key in zip(reports, keys, strict=True) if key == "5" and r not in transferred]
        assert {r.call["outcome_reason"] for r in full} == {"queue_full"}

        stored = wait_for(lambda: (found := items(first, per_page="50")) and len(found) == 16 and found, timeout=90)
        wait_for(lambda: len(inbox.messages) >= 16, timeout=90)
        time.sleep(5)  # both workers poll every 2 s: a second copy would have been sent by now
        assert len(inbox.messages) == 16, [m["Subject"] for m in inbox.messages]
        mailed = sorted(str(m.get_payload(decode=False)) for m in inbox.messages)
        assert len({item["id"] for item in stored}) == 16 and len(set(mailed)) == 16

        # a console edit saved on the first instance is loaded by the second within 10 s
        routing_file = tmp_path / "bot-1" / "fr" / "routing.yml"
        routing = yaml.safe_load(routing_file.read_text(encoding="utf-8"))
        routing["agents"]["s.simon"]["name"] = "Sarah Simon (cellule fraude)"
        edited = yaml.safe_dump(routing, allow_unicode=True)
        console, csrf = first.console()
        form_data = {"file": "routing.yml", "text": edited, "summary": "rename", "csrf_token": csrf}
        saved = console.post("/ops/config", data=form_data)
        console.close()
        assert saved.status_code == 303 and "saved=1" in saved.headers["location"], saved.text[:300]
        began = time.monotonic()

        def renamed() -> bool:
            agents = second.api.get("/api/agents").json()
            return any(a["name"] == "Sarah Simon (cellule fraude)" for a in agents)

        wait_for(renamed, timeout=10, every=0.2)
        assert time.monotonic() - began < 10
        assert "Sarah Simon (cellule fraude)" in (tmp_path / "bot-2" / "fr" / "routing.yml").read_text()
    finally:
        controller.stop()


def test_a_model_published_anywhere_is_served_by_every_instance(serve, tmp_path, postgres_url, fr_nlu_model):
    first, second = _pair(serve, tmp_path, postgres_url, CALLBOT_MODEL_SERVER_TOKEN="pull-secret")
    models = tmp_path / "models" / "nlu"  # the serve fixture's models folder, shared by both instances
    models.mkdir(parents=True, exist_ok=True)
    bot_dir = tmp_path / "bot-1" / "fr"
    for name in ("fr-0000000000000001.tar.gz", "fr-0000000000000002.tar.gz"):
        shutil.copy(fr_nlu_model, models / name)
    publish(bot_dir, tmp_path / "models", models / "fr-0000000000000001.tar.gz")

    def etag(server: Server, held: str = "") -> httpx.Response:
        headers = {"If-None-Match": held} if held else {}
        return httpx.get(
            f"{server.url}/api/nlu/model/published", params={"token": "pull-secret"}, headers=headers, timeout=30
        )

    first_pull = etag(second)
    assert first_pull.status_code == 200 and first_pull.headers["etag"] == '"fr-0000000000000001"'
    assert first_pull.content == fr_nlu_model.read_bytes()
    assert etag(first, first_pull.headers["etag"]).status_code == 304
    assert httpx.get(f"{first.url}/api/nlu/model/published", params={"token": "wrong"}).status_code == 401
    publish(bot_dir, tmp_path / "models", models / "fr-0000000000000002.tar.gz")
    began = time.monotonic()
    wait_for(lambda: etag(second, '"fr-0000000000000001"').status_code == 200, timeout=10, every=0.2)
    assert time.monotonic() - began < 10
    servers = second.api.get("/api/nlu/servers").json()
    assert servers and servers[0]["address"] == "127.0.0.1" and servers[0]["serving"] == "fr-0000000000000002"


def test_a_message_cut_by_a_killed_instance_is_filed_by_the_other(serve, tmp_path, postgres_url):
    first, second = _pair(serve, tmp_path, postgres_url, CALLBOT_CALL_HEARTBEAT_S="1")
    speech = b"".join(line_audio(speech_clip("fr", f"fleurs-fr-00{n}.wav")) for n in (3, 4, 5))
    # the prompt and the beep take the first seconds; the message is recorded from then on
    call_id, _ = asyncio.run(_message_until_killed(first, speech, kill_after_s=16))
    first.process.wait(timeout=10)
    assert first.process.returncode == -signal.SIGKILL
    [item] = wait_for(lambda: items(second), timeout=30)

    def filed() -> dict[str, Any] | None:
        detail: dict[str, Any] = second.api.get(f"/api/mailbox/{item['id']}").json()
        return detail if detail["audio_state"] != "recording" else None

    # three missed heartbeats (3 s here), then the next round of the other instance's housekeeping
    detail = wait_for(filed, timeout=30)
    assert detail["call_id"] == call_id and detail["audio_state"] == "recovered"
    audio = second.api.get(f"/api/mailbox/{item['id']}/audio").content
    assert len(audio) > 8000 * 2 * 3, "seconds of the message were kept"
    call = second.api.get(f"/api/calls/{call_id}").json()
    assert call["status"] == "interrupted", "the killed instance's call is closed, not left in progress"
    assert "filed into the mailbox" in second.logs()


def test_sigterm_lets_five_calls_finish_and_takes_no_new_one(serve, tmp_path):
    server = serve(CALLBOT_DRAIN_TIMEOUT_S="60", CALLBOT_WEBHOOK_RATE_PER_S="0")
    clip = speech_clip("fr", "fleurs-fr-002.wav")

    async def scenario() -> tuple[list[Any], dict[str, Any], str, int]:
        calls = [
            asyncio.ensure_future(
                SimulatedCall(
                    server.url,
                    clip,
                    dtmf="9",
                    keys_first=True,
                    barge_in=True,
                    caller=f"+3361200000{n}",
                    turn_timeout=60,
                    api_token=server.token,
                ).run()
            )
            for n in range(5)
        ]
        async with httpx.AsyncClient(timeout=10) as http:
            for _ in range(100):
                if (await http.get(f"{server.url}/readyz")).json()["active_calls"] == 5:
                    break
                await asyncio.sleep(0.1)
            server.process.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.5)
            ready = await http.get(f"{server.url}/readyz")
            form = {"CallSid": "CA" + "e" * 32, "From": "+33600000000", "To": "+33900000000"}
            new_call = await http.post(f"{server.url}/twilio/voice", data=form)
        reports = [report for report, _ in await asyncio.gather(*calls)]
        assert ready.status_code == 503
        return reports, ready.json(), new_call.text, new_call.status_code

    reports, ready, new_call, status = asyncio.run(scenario())
    # the <Connect action> callback of each came after its message: hang up (the instance then stopped, so
    # what it stored is read from the restarted one below)
    assert all(r.twiml.endswith("<Response><Hangup/></Response>") for r in reports), [r.twiml for r in reports]
    assert any("draining" in reason for reason in ready["reasons"])
    assert status == 200 and "<Redirect" in new_call and "drained=1" in new_call and "<Stream" not in new_call
    server.process.wait(timeout=60)
    assert "drained: no call in progress" in server.logs()
    # every message was closed and filed before the instance stopped
    again = serve(CALLBOT_DATA_DIR=str(server.data_dir))
    stored = items(again, per_page="50")
    states = {again.api.get(f"/api/mailbox/{i['id']}").json()["audio_state"] for i in stored}
    assert len(stored) == 5 and states == {"complete"}, stored
    assert "recovered" not in again.logs()
    calls = again.api.get("/api/calls", params={"limit": 10}).json()
    assert sorted(c["outcome"] for c in calls) == ["overflow"] * 5, calls
