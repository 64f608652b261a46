"""The mailbox's parts on real files and databases: recording and repair, payment-data masking, the workflow,
the store (queues, leases, retries, filters, audit) on SQLite and PostgreSQL, and transcription with Vosk."""

from __future__ import annotations

import asyncio
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from callbot.call.message import MessageTaker
from callbot.frames import Word
from callbot.mailbox.items import TRANSITIONS, ItemFilter, TransitionError, check_transition
from callbot.mailbox.pii import iban_valid, luhn_valid, mask_text, mask_transcript
from callbot.mailbox.recording import MessageMeta, MessageRecording, read_meta, read_pcm, repair
from callbot.mailbox.service import message_path, recover_messages, resolve_audio
from callbot.mailbox.store import Classified, MailboxStore, Transcribed
from callbot.mailbox.transcriber import transcribe_file
from callbot.speech.transcription import Transcriber
from callbot.speech.vosk_asr import VoskEngine
from callbot.storage.database import make_engine, migrate
from routing.bot_config import RecordingPolicy
from tests.conftest import speech_clip

CARD = "4970101234567893"  # passes the Luhn check
SPOKEN_FR = {"0": "zéro", "1": "un", "2": "deux", "3": "trois", "4": "quatre", "5": "cinq", "6": "six"}
SPOKEN_FR |= {"7": "sept", "8": "huit", "9": "neuf"}


def meta(item_id: str = "a" * 32, caller: str = "+33612345678", reason: str = "no_agent") -> MessageMeta:
    return MessageMeta(item_id, "c" * 32, caller, "+33900000000", reason, "fr", datetime.now(UTC).isoformat())


def tone(seconds: float, amplitude: int = 8000, frequency: float = 440.0) -> bytes:
    t = np.arange(int(seconds * 8000)) / 8000
    return (np.sin(2 * np.pi * frequency * t) * amplitude).astype("<i2").tobytes()


# --- recording ---------------------------------------------------------------------------------------------


def test_a_finished_recording_is_a_valid_wav(tmp_path: Path) -> None:
    info = meta()
    recording = MessageRecording(tmp_path / "m.wav", info)
    audio = tone(1.5)
    for start in range(0, len(audio), 320):
        recording.write(audio[start : start + 320])
    recording.sync()
    assert recording.close() == pytest.approx(1.5)
    with wave.open(str(tmp_path / "m.wav")) as wav:
        assert (wav.getframerate(), wav.getsampwidth(), wav.getnchannels()) == (8000, 2, 1)
        assert wav.readframes(wav.getnframes()) == audio
    assert read_meta(tmp_path / "m.json") == info


def test_an_interrupted_recording_is_repaired(tmp_path: Path) -> None:
    recording = MessageRecording(tmp_path / "m.wav", meta())
    audio = tone(2.0)
    for start in range(0, len(audio), 320):
        recording.write(audio[start : start + 320])
    recording._file.flush()  # what a killed process leaves: the OS has the data, the header says 0 bytes
    with (tmp_path / "m.wav").open("ab") as out:
        out.write(b"\x01")  # half a sample
    assert repair(tmp_path / "m.wav") == pytest.approx(2.0)
    with wave.open(str(tmp_path / "m.wav")) as wav:
        assert wav.readframes(wav.getnframes()) == audio
    assert read_pcm(tmp_path / "m.wav") == audio


def test_paths_come_from_our_ids_and_stay_inside_the_recordings_folder(tmp_path: Path) -> None:
    relative, absolute = message_path(tmp_path, "b" * 32, datetime(2026, 12, 1, tzinfo=UTC))
    assert relative == f"2026/12/{'b' * 32}.wav" and absolute == tmp_path / relative
    absolute.parent.mkdir(parents=True)
    absolute.write_bytes(b"")
    assert resolve_audio(tmp_path, relative) == absolute.resolve()
    for hostile in ("../../etc/passwd", "/etc/passwd", "2026/12/../../../x.wav", "2026/12/x.json"):
        assert resolve_audio(tmp_path, hostile) is None, hostile


# --- masking -----------------------------------------------------------------------------------------------


def test_luhn_and_iban_checks() -> None:
    assert luhn_valid(CARD) and not luhn_valid("4970101234567890")
    assert iban_valid("FR76 3000 6000 0112 3456 7890 189") and not iban_valid("FR76 3000 6000 0112 3456 7890 188")


@pytest.mark.parametrize(
    ("text", "language", "expected", "found"),
    [
        (f"ma carte c'est {CARD} merci", "fr", "ma carte c'est [numéro de carte masqué] merci", ["card"]),
        (
            f"ma carte {' '.join(CARD[i : i + 4] for i in range(0, 16, 4))}",
            "fr",
            "ma carte [numéro de carte masqué]",
            ["card"],
        ),
        ("ma carte " + " ".join(SPOKEN_FR[d] for d in CARD), "fr", "ma carte [numéro de carte masqué]", ["card"]),
        (
            "rappelez-moi au zéro six douze trente quatre cinquante six soixante dix huit",
            "fr",
            "rappelez-moi au 06 12 34 56 78",
            [],
        ),
        ("le contrat 4970101234567890 pas une carte", "fr", "le contrat 4970101234567890 pas une carte", []),
        ("mon iban FR76 3000 6000 0112 3456 7890 189", "fr", "mon iban [coordonnées bancaires masquées]", ["account"]),
        ("mon rib 30006000011234567890189", "fr", "mon rib [coordonnées bancaires masquées]", ["account"]),
        (
            "my card is four nine seven oh one oh one two three four five six seven eight nine three",
            "en",
            "my card is [card number removed]",
            ["card"],
        ),
        ("a hundred pounds on the fifth", "en", "100 pounds on the fifth", []),
    ],
)
def test_payment_data_is_masked_and_callback_numbers_are_kept(
    text: str, language: str, expected: str, found: list[str]
) -> None:
    masked, kinds = mask_text(text, language)
    assert masked == expected
    assert kinds == found


def test_spoken_card_words_are_masked_with_their_timings_kept() -> None:
    spoken = ["ma", "carte", *(SPOKEN_FR[d] for d in CARD), "et", "mon", "numéro", "zéro", "six", "douze"]
    words = tuple(Word(w, i * 0.5, i * 0.5 + 0.4, 0.9) for i, w in enumerate(spoken))
    masked = mask_transcript(" ".join(spoken), words, "fr")
    assert [w.word for w in masked.words[:2]] == ["ma", "carte"]
    assert all(w.word == "•••" for w in masked.words[2:18])
    assert [w.word for w in masked.words[18:]] == ["et", "mon", "numéro", "zéro", "six", "douze"]
    assert [w.start for w in masked.words] == [w.start for w in words]
    assert masked.text == "ma carte [numéro de carte masqué] et mon numéro 06 12"


# --- workflow ----------------------------------------------------------------------------------------------

ALL = ("new", "assigned", "in_progress", "called_back", "closed")


@pytest.mark.parametrize("current", ALL)
@pytest.mark.parametrize("wanted", ALL)
def test_transitions(current: str, wanted: str) -> None:
    if wanted == current or wanted in TRANSITIONS[current]:
        check_transition(current, wanted)
    else:
        with pytest.raises(TransitionError, match=f"cannot become {wanted}"):
            check_transition(current, wanted)


# --- message ending ----------------------------------------------------------------------------------------

POLICY = RecordingPolicy(max_duration_s=6, end_silence_s=1.0, start_timeout_s=2.0, finish_key="#")


def _feed(taker: MessageTaker, audio: bytes) -> None:
    for start in range(0, len(audio), 320):
        taker.feed(audio[start : start + 320])


@pytest.mark.parametrize(
    ("audio", "key", "ended_by", "seconds"),
    [
        (tone(0.5, 0) + tone(1.0) + tone(1.5, 0), None, "silence", 2.5),
        (tone(3.0, 60), None, "no_speech", 2.0),  # line noise is not speech
        (tone(8.0), None, "max_duration", 6.0),
        (tone(1.0), "#", "finish_key", 1.0),
        (tone(1.0) + tone(0.5, 0) + tone(1.0) + tone(1.5, 0), None, "silence", 3.5),  # a pause is not the end
    ],
)
def test_a_message_ends(tmp_path: Path, audio: bytes, key: str | None, ended_by: str, seconds: float) -> None:
    taker = MessageTaker(MessageRecording(tmp_path / "m.wav", meta()), POLICY, "m.wav")
    taker.arm()
    _feed(taker, audio)
    if key is not None:
        assert taker.key("1") is False
        assert taker.key(key) is True
    assert asyncio.run(taker.wait()) == ended_by
    assert taker.recording.close() == pytest.approx(seconds, abs=0.03)


def test_the_second_before_the_beep_ends_is_kept(tmp_path: Path) -> None:
    taker = MessageTaker(MessageRecording(tmp_path / "m.wav", meta()), POLICY, "m.wav")
    _feed(taker, tone(3.0, 0) + tone(0.5))  # the prompt, then the caller speaking as the beep ends
    assert taker.recording.duration_s == 0
    taker.arm()
    _feed(taker, tone(0.5) + tone(1.5, 0))
    assert asyncio.run(taker.wait()) == "silence"
    assert taker.recording.close() == pytest.approx(1.0 + 0.5 + 1.0)
    assert read_pcm(tmp_path / "m.wav") == tone(0.5, 0) + tone(0.5) + tone(0.5) + tone(1.0, 0)


# --- the store on both databases -------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'mb.db'}" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    migrate(engine)
    yield MailboxStore(engine, notify=True)
    engine.dispose()


def _transcribed(text: str) -> Transcribed:
    return Transcribed(text, [["bonjour", 0.1, 0.5, 0.92]], [], None, None)


def test_transcription_queue_leases_retries_and_fails_for_good(store: MailboxStore) -> None:
    store.create(meta("1" * 32), "2026/12/1.wav")
    assert store.claim_transcription() is None, "not while it is being recorded"
    store.finish_recording("1" * 32, 12.5)
    job = store.claim_transcription()
    assert job is not None and job.attempt == 1 and job.audio_path == "2026/12/1.wav"
    assert store.claim_transcription() is None, "leased to the first worker"
    assert store.fail_transcription(job.item_id, "decoder crashed", retry_in=timedelta(0)) == "pending_transcription"
    assert store.claim_transcription().attempt == 2  # type: ignore[union-attr]
    store.fail_transcription(job.item_id, "decoder crashed", retry_in=timedelta(0))
    assert store.claim_transcription().attempt == 3  # type: ignore[union-attr]
    assert (
        store.fail_transcription(job.item_id, "decoder crashed again", retry_in=timedelta(0)) == "transcription_failed"
    )
    assert store.claim_transcription() is None
    row = store.get(job.item_id)
    assert row.transcription == "transcription_failed" and row.transcription_error == "decoder crashed again"
    assert [e.action for e in row.events] == [
        "created",
        "recorded",
        "transcription_retry",
        "transcription_retry",
        "transcription_failed",
    ]


def test_a_dead_workers_lease_expires(store: MailboxStore) -> None:
    store.create(meta("2" * 32), "x.wav")
    store.finish_recording("2" * 32, 3.0)
    assert store.claim_transcription() is not None
    from sqlalchemy import update

    from callbot.storage.tables import MailboxItemRow

    with store.engine.begin() as conn:  # the worker died ten minutes ago
        conn.execute(update(MailboxItemRow).values(transcription_lease_until=datetime.now(UTC) - timedelta(seconds=1)))
    job = store.claim_transcription()
    assert job is not None and job.attempt == 2


def test_filters_search_counts_and_changes(store: MailboxStore) -> None:
    for n, (caller, reason, text) in enumerate(
        [
            ("+33611111111", "closed", "je voudrais rembourser mon crédit par anticipation"),
            ("+33622222222", "no_agent", "ma carte a été volée hier soir"),
            ("+33633333333", "queue_full", "100% remboursé ? _test_"),
        ]
    ):
        item_id = f"{n}" * 32
        store.create(meta(item_id, caller, reason), f"{item_id}.wav")
        store.finish_recording(item_id, 10.0 + n)
        store.save_transcription(
            item_id, _transcribed(text), Classified("early_repayment" if n == 0 else None, 0.8, {})
        )
    assert store.page(ItemFilter(), "newest", 1, 10).total == 3
    assert [r.caller_number for r in store.page(ItemFilter(text="CARTE"), "newest", 1, 10).items] == ["+33622222222"]
    assert store.page(ItemFilter(text="100%"), "newest", 1, 10).total == 1, "% is a letter in a search, not a wildcard"
    assert store.page(ItemFilter(text="_test_"), "newest", 1, 10).total == 1
    assert store.page(ItemFilter(text="x_x"), "newest", 1, 10).total == 0
    assert store.page(ItemFilter(reason="early_repayment"), "newest", 1, 10).total == 1
    assert store.page(ItemFilter(reason="no_agent"), "newest", 1, 10).total == 1
    page = store.page(ItemFilter(), "longest", 1, 2)
    assert [r.duration_s for r in page.items] == [12.0, 11.0] and page.total == 3
    assert page.counts == {"new": 3, "assigned": 0, "in_progress": 0, "called_back": 0, "closed": 0}

    item = "1" * 32
    row = store.change(item, "camille", assignee="camille")
    assert (row.status, row.assignee) == ("assigned", "camille")
    row = store.change(
        item, "camille", status="in_progress", note="Rappel prévu à 14 h", corrected_reason="lost_stolen_card"
    )
    assert row.status == "in_progress" and row.corrected_reason == "lost_stolen_card"
    with pytest.raises(TransitionError):
        store.change(item, "camille", status="new", note="not saved")
    row = store.change(item, "camille", status="called_back")
    assert store.page(ItemFilter(assignee="camille"), "newest", 1, 10).counts["called_back"] == 1
    actions = [(e.actor, e.action) for e in store.get(item).events]
    assert actions[-6:] == [
        ("camille", "assigned"),
        ("camille", "status"),
        ("camille", "status"),
        ("camille", "reason_corrected"),
        ("camille", "note"),
        ("camille", "status"),
    ]
    assert store.page(ItemFilter(reason="lost_stolen_card"), "newest", 1, 10).total == 1


def test_recovery_files_messages_recorded_while_the_database_was_down(store: MailboxStore, tmp_path: Path) -> None:
    recordings = tmp_path / "recordings"
    lost = meta("3" * 32)
    _, path = message_path(recordings, lost.item_id, datetime.now(UTC))
    recording = MessageRecording(path, lost)
    recording.write(tone(1.2))
    recording._file.flush()  # the process died here, before the item was filed
    interrupted = meta("4" * 32)
    relative2, path2 = message_path(recordings, interrupted.item_id, datetime.now(UTC))
    store.create(interrupted, relative2)
    second = MessageRecording(path2, interrupted)
    second.write(tone(0.7))
    second._file.flush()
    assert sorted(recover_messages(store, recordings)) == sorted([lost.item_id, interrupted.item_id])
    assert store.get(lost.item_id).duration_s == pytest.approx(1.2)
    assert store.get(interrupted.item_id).audio_state == "recovered"
    assert recover_messages(store, recordings) == [], "idempotent"
    assert not path.with_suffix(".json").exists()


def test_transcription_with_the_real_vosk_model(ko_model: Path, tmp_path: Path) -> None:
    """The Korean model is the one reachable offline: it hears French badly, but the path is real — text,
    words with increasing times inside the message, confidences between 0 and 1."""
    from callbot.simulator import read_wav_as_line_pcm

    path = tmp_path / "m.wav"
    recording = MessageRecording(path, meta())
    recording.write(tone(0.5, 0) + read_wav_as_line_pcm(speech_clip("fr", "fleurs-fr-003.wav")) + tone(1.0, 0))
    duration = recording.close()
    text, words, cpu = transcribe_file(Transcriber("vosk", "ko", vosk=VoskEngine(ko_model)), path, "ko")
    assert text and words and cpu > 0
    assert text == " ".join(w.word for w in words)
    assert all(0.0 <= w.conf <= 1.0 for w in words)
    assert all(0.4 <= w.start < w.end <= duration for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
