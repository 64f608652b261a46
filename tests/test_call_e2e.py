"""End to end: `callbot call` (a simulated Twilio call) against a served app, on the real engines."""

from __future__ import annotations

import json
import subprocess
import sys
import wave
from pathlib import Path

import httpx
import numpy as np

from routing.bot_folder import load_bot_folder
from tests.conftest import ROOT, Server, open_bot, speech_clip

FOLDER = load_bot_folder(open_bot("fr"))
BOT = FOLDER.bot


def place_call(server: Server, audio: Path, *args: str, timeout: float = 120) -> dict:
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "callbot.cli",
            "call",
            str(audio),
            "--url",
            server.url,
            "--json",
            "--api-token",
            server.token,
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        check=False,
    )
    assert completed.returncode == 0, f"{completed.stderr}\n--- server ---\n{server.logs()[-3000:]}"
    return json.loads(completed.stdout)


def silence_wav(path: Path, seconds: float = 0.5, rate: int = 16000) -> Path:
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(rate)
        wav.writeframes(b"\0\0" * int(seconds * rate))
    return path


def wav_rms(path: Path) -> tuple[float, float]:
    with wave.open(str(path), "rb") as wav:
        samples = np.frombuffer(wav.readframes(wav.getnframes()), dtype="<i2").astype(np.float64)
        return len(samples) / wav.getframerate(), float(np.sqrt(np.mean(samples**2))) if len(samples) else 0.0


def target_of(queue: str) -> str:
    target = FOLDER.routing.queues[queue].target
    return f"{target.type}:{target.value}"


def test_keypad_call_without_speech_model_is_greeted_and_transferred(serve, tmp_path):
    """No Vosk model installed: the greeting offers the keypad menu; 0 transfers to the advisors' queue."""
    server = serve(CALLBOT_TWILIO_AUTH_TOKEN="test-token-not-a-secret")
    health = httpx.get(f"{server.url}/healthz").json()
    assert health["status"] == "degraded"
    assert health["components"]["asr"]["state"] == "unavailable"
    assert "callbot models pull fr" in health["components"]["asr"]["detail"]

    bot_wav = tmp_path / "bot.wav"
    report = place_call(
        server,
        silence_wav(tmp_path / "caller.wav"),
        "--dtmf",
        "0",
        "--barge-in",
        "--auth-token",
        "test-token-not-a-secret",
        "--out",
        str(bot_wav),
    )

    assert report["outcome"] == "transfer"
    zero = BOT.menus["main"].options["0"].action
    assert zero is not None and zero.action == "transfer" and zero.skill == "general"
    assert report["transfer_target"] == target_of("advisors")
    assert f'<Enqueue action="{server.url}/twilio/transfer/{report["call_id"]}">advisors</Enqueue>' in report["twiml"]
    assert report["first_audio_ms"] is not None and report["first_audio_ms"] < 1000
    speakers = [(t["speaker"], t["action"]) for t in report["turns"]]
    assert speakers == [("bot", "greeting"), ("dtmf", None), ("bot", "transfer")]
    greeting, key, transfer = report["turns"]
    assert greeting["text"] == f"{BOT.prompts.greeting} {BOT.menus['main'].prompt}"
    assert key["text"] == "0"
    assert transfer["text"] == BOT.prompts.transfer
    assert transfer["decision"]["rule"] == "menu:0"
    assert transfer["latency_ms"] is not None
    assert report["clears"] >= 1, "pressing a key during the greeting must cut it (barge-in)"
    assert report["marks_echoed"] >= 1
    seconds, rms = wav_rms(bot_wav)
    assert seconds > 1.0 and rms > 300, "the caller must have heard the bot"

    call = server.api.get(f"/api/calls/{report['call_id']}").json()
    assert call["status"] == "completed"
    assert call["degraded"] == ["asr"]
    assert call["from_number"] == "+33612345678"
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'callbot_calls_total{outcome="transfer"} 1.0' in metrics
    assert "callbot_first_audio_seconds_count 1.0" in metrics


def test_unsigned_webhook_is_refused_when_a_token_is_configured(serve):
    server = serve(CALLBOT_TWILIO_AUTH_TOKEN="test-token-not-a-secret")
    form = {"CallSid": "CA" + "1" * 32, "From": "+33600000000", "To": "+33900000000"}
    assert httpx.post(f"{server.url}/twilio/voice", data=form).status_code == 403
    bad = {"X-Twilio-Signature": "bm90IGEgc2lnbmF0dXJl"}
    assert httpx.post(f"{server.url}/twilio/voice", data=form, headers=bad).status_code == 403
    assert server.api.get("/api/calls").json() == []


def test_menu_answer_then_caller_hangs_up_is_answered(serve, tmp_path):
    server = serve()
    report = place_call(server, silence_wav(tmp_path / "caller.wav"), "--dtmf", "3", "--barge-in", "--speed", "4")
    three = BOT.menus["main"].options["3"]
    assert three.intent == "opening_hours"
    answer_id = BOT.intents["opening_hours"].response  # type: ignore[union-attr]
    bot_turns = [t for t in report["turns"] if t["speaker"] == "bot"]
    assert bot_turns[-1]["action"] == "answer"
    assert bot_turns[-1]["text"].startswith(BOT.responses[answer_id][0][:30])
    assert report["outcome"] == "answered"
    assert report["transfer_target"] is None
    assert "<Hangup/>" in report["twiml"]


def test_spoken_request_goes_through_vosk_and_rasa(serve, tmp_path, ko_model, rasa_server):
    """The speech path on real engines: Vosk (the Korean model, the one available offline) hears a French
    caller, Rasa classifies what it heard, and the decision follows the bot's confidence policy."""
    url, token = rasa_server
    server = serve(CALLBOT_VOSK_MODEL=str(ko_model), CALLBOT_RASA_URL=url, CALLBOT_RASA_TOKEN=token)
    for _ in range(100):
        if httpx.get(f"{server.url}/healthz").json()["components"]["nlu"]["state"] == "up":
            break
    report = place_call(server, speech_clip("fr", "stp-fr-000.wav"), "--dtmf", "0", "--barge-in")

    caller = [t for t in report["turns"] if t["speaker"] == "caller"]
    assert caller, f"no caller turn recorded: {report['turns']}"
    heard = caller[0]
    assert heard["text"], "Vosk produced no transcript"
    assert heard["intent"] is not None and 0.0 < heard["confidence"] <= 1.0
    assert heard["decision"]["ranking"][0][0] == heard["intent"]
    words = heard["decision"]["words"]
    assert words and all(w[1] <= w[2] for w in words)
    reply = report["turns"][report["turns"].index(heard) + 1]
    assert reply["speaker"] == "bot"
    assert reply["decision"]["intent"] == heard["intent"]
    assert reply["decision"]["rule"] in {"low_confidence", "ambiguous", f"intent:{heard['intent']}"}
    assert report["clears"] >= 1, "speaking over the greeting must stop it (barge-in)"
    if reply["decision"]["rule"] == "intent:out_of_scope":
        # the Korean model's words for a French sentence are gibberish, which the NLU rejects as off-topic: the
        # caller is offered the mailbox (the key pressed next goes into the message)
        assert BOT.intents["out_of_scope"].action == "overflow"
        assert report["outcome"] == "overflow" and reply["text"] == BOT.overflow_prompt("not_understood")
    else:  # unsure: the bot asks again, and the key (0: an advisor) transfers
        assert report["outcome"] == "transfer"


def test_rasa_down_sends_the_caller_to_the_failover_skill(serve, ko_model):
    server = serve(CALLBOT_VOSK_MODEL=str(ko_model), CALLBOT_RASA_URL="http://127.0.0.1:9")
    report = place_call(server, speech_clip("fr", "stp-fr-001.wav"), "--barge-in")
    assert report["outcome"] == "transfer"
    assert FOLDER.routing.failover_skill == "general"
    assert report["transfer_target"] == target_of("advisors")
    last = report["turns"][-1]
    assert last["decision"]["rule"] == "nlu_unavailable"
    assert last["text"] == BOT.prompts.technical_issue
    assert "[call " in server.logs() and "NLU unavailable" in server.logs()


def test_a_call_is_stored_in_postgresql(serve, tmp_path, postgres_url):
    server = serve(CALLBOT_DATABASE_URL=postgres_url)
    report = place_call(server, silence_wav(tmp_path / "caller.wav"), "--dtmf", "0", "--barge-in")
    assert report["outcome"] == "transfer"
    call = server.api.get(f"/api/calls/{report['call_id']}").json()
    assert call["status"] == "completed"
    assert [t["speaker"] for t in call["turns"]] == ["bot", "dtmf", "bot"]
    assert httpx.get(f"{server.url}/healthz").json()["components"]["database"]["detail"].startswith("postgresql")


def test_a_french_caller_is_heard_by_the_whisper_live_mode_and_routed(serve, whisper_base, rasa_server):
    """No French Vosk model here: live turns are heard by Whisper behind Silero voice activity. A real French
    speaker (FLEURS, CC BY 4.0) describes an accident: Whisper reads it, the French NLU sees an insurance claim,
    and the call is transferred to the claims queue; voice over the greeting stops it (barge-in)."""
    url, token = rasa_server
    server = serve(CALLBOT_WHISPER_MODEL=str(whisper_base), CALLBOT_RASA_URL=url, CALLBOT_RASA_TOKEN=token)
    health = httpx.get(f"{server.url}/healthz").json()["components"]
    assert health["asr"]["state"] == "degraded"  # Whisper on the CPU: it answers later than Vosk would
    assert "whisper whisper-base with voice activity" in health["asr"]["detail"]
    assert "answers later than Vosk" in health["asr"]["detail"] and "GPU" in health["asr"]["detail"]
    for _ in range(100):
        if httpx.get(f"{server.url}/healthz").json()["components"]["nlu"]["state"] == "up":
            break
    # "l'accident a eu lieu en terrain montagneux et il semblerait que cela ait été causé par un incendie malveillant"
    report = place_call(server, speech_clip("fr", "fleurs-fr-000.wav"), "--barge-in")

    greeting, heard, reply = report["turns"][:3]
    assert greeting["decision"] == {"rule": "greeting", "speech": True}
    assert heard["speaker"] == "caller" and "accident" in heard["text"].lower(), heard
    assert heard["intent"] == "insurance_claim" and heard["confidence"] >= BOT.nlu.threshold
    words = heard["decision"]["words"]
    assert words and all(0 <= w[1] <= w[2] and 0 <= w[3] <= 1 for w in words)
    assert reply["decision"]["rule"] == "intent:insurance_claim"
    assert report["outcome"] == "transfer" and report["transfer_target"] == target_of("claims")
    assert report["clears"] >= 1, "voice over the greeting must stop it (barge-in on voice activity)"
    assert "barge-in (caller speaks: '')" in server.logs()
