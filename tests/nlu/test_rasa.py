"""Rasa on the real server: the sidecar, the client's failure handling, and training."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import pytest

from callbot.errors import ConfigError, NluUnavailableError
from nlu.client import MAX_TEXT_CHARS, CircuitBreaker, RasaClient
from nlu.sidecar import RasaSidecar
from nlu.training import model_path_for, train
from tests.conftest import RASA_VENV, ROOT, free_port

PARSE_BODY = {
    "text": "x",
    "intent": {"name": "greet", "confidence": 0.9},
    "intent_ranking": [{"name": "greet", "confidence": 0.9}, {"name": "goodbye", "confidence": 0.05}],
    "entities": [{"entity": "card_type", "value": "cb", "start": 0, "end": 1}],
}


class FakeRasa(BaseHTTPRequestHandler):
    """Answers /model/parse like Rasa, after ``delay`` seconds; records what it was sent."""

    delay = 0.0
    seen: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).seen.append(body["text"])
        time.sleep(type(self).delay)
        payload = json.dumps({**PARSE_BODY, "text": body["text"]}).encode()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client timed out and left, which is what the slow-Rasa test provokes

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_rasa() -> Iterator[tuple[str, type[FakeRasa]]]:
    handler = type("Handler", (FakeRasa,), {"delay": 0.0, "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


async def wait_for_replacement(sidecar: RasaSidecar, old_pid: int, timeout_s: float = 200) -> None:
    """Until the supervisor has a new Rasa process up (or the time is out: the caller's asserts then fail)."""
    for _ in range(int(timeout_s / 0.5)):
        await asyncio.sleep(0.5)
        if sidecar.state == "up" and sidecar.pid not in (None, old_pid):
            return


async def test_sidecar_parses_phone_utterances_and_survives_being_killed(fr_nlu_model, tmp_path):
    sidecar = RasaSidecar(RASA_VENV, fr_nlu_model, free_port(), tmp_path / "rasa.log", start_timeout_s=180)
    await sidecar.start()
    client = RasaClient(sidecar.url, timeout_s=5, token=sidecar.token)
    try:
        sidecar.supervise()
        result = await client.parse("euh bonjour j'ai perdu ma carte bleue hier soir")
        assert result.intent == "lost_stolen_card"
        assert result.confidence >= 0.45 and result.margin >= 0.08
        assert ("card_type", "cb") in result.entities
        assert result.ranking[0] == (result.intent, result.confidence)

        first_pid = sidecar.pid
        assert first_pid is not None
        # The auth token is not readable by other local users through `ps`.
        cmdline = Path(f"/proc/{first_pid}/cmdline").read_bytes()
        assert sidecar.token.encode() not in cmdline and b"--model" in cmdline
        assert not sidecar.token.startswith("-")
        os.killpg(first_pid, signal.SIGKILL)
        await wait_for_replacement(sidecar, first_pid)
        assert sidecar.restarts == 1 and sidecar.state == "up"
        again = await client.parse("je voudrais parler à un conseiller s'il vous plaît")
        assert again.intent == "talk_to_advisor"
    finally:
        await client.aclose()
        await sidecar.stop()
    assert sidecar.pid is None and sidecar.state == "stopped"


async def test_a_hung_sidecar_is_killed_and_restarted(fr_nlu_model, tmp_path):
    """Alive but frozen (SIGSTOP): the health probe notices and the supervisor brings a fresh one up."""
    sidecar = RasaSidecar(RASA_VENV, fr_nlu_model, free_port(), tmp_path / "rasa.log", start_timeout_s=180)
    await sidecar.start()
    try:
        sidecar.supervise(probe_every_s=1.0, probe_failures=2)
        frozen = sidecar.pid
        assert frozen is not None
        os.kill(frozen, signal.SIGSTOP)
        await wait_for_replacement(sidecar, frozen)
        assert sidecar.restarts == 1 and sidecar.pid != frozen
    finally:
        await sidecar.stop()


async def test_client_times_out_on_a_slow_rasa_then_the_breaker_opens(fake_rasa):
    url, handler = fake_rasa
    handler.delay = 2.0
    client = RasaClient(url, timeout_s=0.3, breaker=CircuitBreaker(threshold=2, cooldown_s=30))
    try:
        for _ in range(2):
            started = time.monotonic()
            with pytest.raises(NluUnavailableError, match="did not answer"):
                await client.parse("bonjour")
            assert time.monotonic() - started < 1.5
        sent = len(handler.seen)
        with pytest.raises(NluUnavailableError, match="not retried yet"):
            await client.parse("bonjour")
        assert len(handler.seen) == sent, "an open breaker must not send requests"
    finally:
        await client.aclose()


async def test_breaker_lets_a_trial_through_after_the_cooldown(fake_rasa):
    url, _ = fake_rasa
    breaker = CircuitBreaker(threshold=1, cooldown_s=0.2)
    client = RasaClient(url, timeout_s=2, breaker=breaker)
    try:
        breaker.failure()
        assert breaker.is_open
        await asyncio.sleep(0.3)
        result = await client.parse("bonjour")
        assert result.intent == "greet" and not breaker.is_open and breaker.failures == 0
    finally:
        await client.aclose()


async def test_client_when_rasa_is_down():
    client = RasaClient(f"http://127.0.0.1:{free_port()}", timeout_s=1)
    try:
        with pytest.raises(NluUnavailableError, match="ConnectError"):
            await client.parse("bonjour")
    finally:
        await client.aclose()


async def test_empty_and_huge_texts(fake_rasa):
    url, handler = fake_rasa
    client = RasaClient(url)
    try:
        empty = await client.parse("   ")
        assert empty.intent is None and empty.confidence == 0.0 and handler.seen == []
        huge = "allô " * 5000 + "\udcff"
        result = await client.parse(huge)
        assert len(handler.seen[0]) <= MAX_TEXT_CHARS and result.intent == "greet"
    finally:
        await client.aclose()


def test_training_is_skipped_when_nothing_changed(fr_nlu_model):
    again = train(ROOT / "bots" / "fr", ROOT / "models", RASA_VENV)
    assert again.skipped and again.model_path == fr_nlu_model


def test_a_broken_training_file_names_file_and_line(tmp_path):
    bot = tmp_path / "bot"
    bot.mkdir()
    (bot / "config.yml").write_text((ROOT / "bots" / "fr" / "config.yml").read_text())
    (bot / "nlu.yml").write_text('version: "3.1"\nnlu:\n- intent: greet\n  examples: |\n    - bonjour\n  - : [\n')
    with pytest.raises(ConfigError, match=r"nlu\.yml line \d+"):
        train(bot, tmp_path / "models", RASA_VENV)
    (bot / "nlu.yml").write_bytes(b"nlu:\n- intent: greet\n  examples: |\n    - caf\xe9\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        train(bot, tmp_path / "models", RASA_VENV)


def test_model_name_follows_the_training_data(tmp_path):
    bot = tmp_path / "fr"
    bot.mkdir()
    for name in ("config.yml", "nlu.yml"):
        (bot / name).write_text((ROOT / "bots" / "fr" / name).read_text())
    before = model_path_for(bot, tmp_path)
    with (bot / "nlu.yml").open("a") as handle:
        handle.write("    - salut tout le monde\n")
    assert model_path_for(bot, tmp_path) != before
    assert isinstance(before, Path) and before.name.startswith("fr-")
