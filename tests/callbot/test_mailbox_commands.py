"""`callbot mailbox ...` on a real data folder: list, show, export, transcribe messages that waited for a model,
recover, purge past retention, and a caller's access and erasure requests."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import update

from callbot.mailbox.items import ItemFilter
from callbot.mailbox.recording import MessageMeta, MessageRecording
from callbot.mailbox.service import message_path
from callbot.mailbox.store import MailboxStore
from callbot.simulator import read_wav_as_line_pcm
from callbot.storage.call_store import CallStore, TurnRecord
from callbot.storage.database import make_engine, migrate
from callbot.storage.tables import CallRow, MailboxItemRow
from tests.conftest import ROOT, open_bot, speech_clip


@pytest.fixture
def data(tmp_path: Path) -> Path:
    return tmp_path / "data"


def _cli(data: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "callbot.cli", "mailbox", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CALLBOT_DATA_DIR": str(data), "CALLBOT_BOT_DIR": str(open_bot()), **env},
        timeout=120,
        check=False,
    )


def _message(
    store: MailboxStore, recordings: Path, item_id: str, caller: str, audio: bytes, days_ago: float = 0
) -> None:
    started = datetime.now(UTC) - timedelta(days=days_ago)
    meta = MessageMeta(item_id, item_id[::-1], caller, "+33900000000", "closed", "fr", started.isoformat())
    relative, path = message_path(recordings, item_id, started)
    recording = MessageRecording(path, meta)
    recording.write(audio)
    store.create(meta, relative)
    store.finish_recording(item_id, recording.close())
    path.with_suffix(".json").unlink()


def _setup(data: Path) -> tuple[MailboxStore, CallStore]:
    engine = make_engine(f"sqlite:///{data / 'callbot.db'}")
    migrate(engine)
    return MailboxStore(engine), CallStore(engine)


def test_messages_wait_for_a_model_then_the_command_transcribes_them(data: Path, ko_model: Path) -> None:
    store, _ = _setup(data)
    speech = read_wav_as_line_pcm(speech_clip("fr", "fleurs-fr-003.wav"))
    _message(store, data / "recordings", "1" * 32, "+33611111111", speech)
    _message(store, data / "recordings", "2" * 32, "+33622222222", b"\0\0" * 8000)
    assert "2 message(s): new 2" in _cli(data, "list").stdout
    listed = json.loads(_cli(data, "list", "--json").stdout)
    assert listed["total"] == 2 and {i["id"] for i in listed["items"]} == {"1" * 32, "2" * 32}
    done = _cli(data, "transcribe", "--pending", CALLBOT_VOSK_MODEL=str(ko_model))
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()[:2]) == [f"{'1' * 32}\ttranscribed", f"{'2' * 32}\ttranscribed"]
    shown = json.loads(_cli(data, "show", "1" * 32).stdout)
    assert shown["transcription"] == "transcribed" and shown["words"] and shown["transcript"]
    assert [e["action"] for e in shown["events"]] == ["created", "recorded", "transcribed"]
    assert json.loads(_cli(data, "show", "2" * 32).stdout)["transcript"] == ""
    csv_text = _cli(data, "export", "--search", shown["transcript"].split()[0]).stdout
    assert csv_text.splitlines()[0].startswith("id,received_at,caller") and "1" * 32 in csv_text
    missing = _cli(data, "show", "9" * 32)
    assert missing.returncode == 1 and "no message" in missing.stderr


def test_without_a_model_the_command_says_what_to_install(data: Path, tmp_path: Path) -> None:
    _setup(data)
    refused = _cli(data, "transcribe", "--pending", CALLBOT_MODELS_DIR=str(tmp_path / "none"))
    assert refused.returncode == 1 and "callbot models pull fr" in refused.stderr


def test_purge_applies_retention_to_audio_transcripts_and_call_turns(data: Path) -> None:
    store, calls = _setup(data)
    recordings = data / "recordings"
    _message(store, recordings, "3" * 32, "+33633333333", b"\1\0" * 800, days_ago=40)
    _message(store, recordings, "4" * 32, "+33644444444", b"\1\0" * 800, days_ago=2)
    with store.engine.begin() as conn:
        conn.execute(update(MailboxItemRow).values(transcript="texte", transcription="transcribed"))

    async def old_call() -> None:
        await calls.create_call(
            "oldcall",
            provider="twilio",
            provider_call_id="CA1",
            from_number="+33633333333",
            to_number="",
            bot="fr",
            language="fr",
        )
        await calls.add_turns("oldcall", [TurnRecord("caller", "mon numéro de contrat A123456")])

    asyncio.run(old_call())
    with store.engine.begin() as conn:
        conn.execute(update(CallRow).values(created_at=datetime.now(UTC) - timedelta(days=40)))
    dry = _cli(data, "purge", "--dry-run", CALLBOT_AUDIO_RETENTION_DAYS="30")
    assert "would delete 1 recording(s)" in dry.stdout
    purged = _cli(data, "purge", CALLBOT_AUDIO_RETENTION_DAYS="30", CALLBOT_TRANSCRIPT_RETENTION_DAYS="30")
    assert purged.returncode == 0, purged.stderr
    assert (
        "deleted 1 recording(s)" in purged.stdout and "1 message transcript(s) and 1 call turn text(s)" in purged.stdout
    )
    old, recent = store.get("3" * 32), store.get("4" * 32)
    assert old.audio_path is None and old.audio_state == "purged" and old.transcript is None
    assert recent.audio_path is not None and recent.transcript == "texte"
    assert not list(recordings.glob(f"*/*/{'3' * 32}.wav")) and list(recordings.glob(f"*/*/{'4' * 32}.wav"))
    call = asyncio.run(calls.get_call("oldcall"))
    assert call is not None and call.turns[0].text == ""


def test_a_callers_data_is_exported_then_erased(data: Path, tmp_path: Path) -> None:
    store, calls = _setup(data)
    recordings = data / "recordings"
    _message(store, recordings, "5" * 32, "+33655555555", b"\2\0" * 1600)
    _message(store, recordings, "6" * 32, "+33666666666", b"\3\0" * 1600)

    async def call() -> None:
        await calls.create_call(
            "c5",
            provider="twilio",
            provider_call_id="CA5",
            from_number="+33655555555",
            to_number="",
            bot="fr",
            language="fr",
        )
        await calls.add_turns("c5", [TurnRecord("caller", "je voudrais être rappelé")])

    asyncio.run(call())
    archive = tmp_path / "caller.zip"
    exported = _cli(data, "caller", "export", "+33655555555", "--out", str(archive))
    assert exported.returncode == 0 and "1 call(s), 1 message(s)" in exported.stdout
    with zipfile.ZipFile(archive) as bundle:
        document = json.loads(bundle.read("data.json"))
        assert bundle.read(f"recordings/{'5' * 32}.wav")[44:] == b"\2\0" * 1600
    assert document["calls"][0]["turns"][0]["text"] == "je voudrais être rappelé"
    assert [m["id"] for m in document["messages"]] == ["5" * 32]

    assert _cli(data, "caller", "erase", "+33655555555").returncode == 1, "needs --yes"
    erased = _cli(data, "caller", "erase", "+33655555555", "--yes")
    assert "erased 1 call(s) and 1 message(s)" in erased.stdout
    assert [i.id for i in store.all_matching(ItemFilter())] == ["6" * 32]
    assert asyncio.run(calls.get_call("c5")) is None
    assert not list(recordings.glob(f"*/*/{'5' * 32}.*")) and list(recordings.glob(f"*/*/{'6' * 32}.wav"))
