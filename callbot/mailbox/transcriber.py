"""Transcribing a recorded message with Vosk: the full text, and each word with its times and confidence."""

from __future__ import annotations

from pathlib import Path

from callbot.frames import TranscriptFinal, Word
from callbot.mailbox.recording import SAMPLE_RATE, read_pcm
from callbot.speech.vosk_asr import VoskEngine

_CHUNK_BYTES = SAMPLE_RATE  # half a second of 16-bit audio


def transcribe_file(engine: VoskEngine, path: Path) -> tuple[str, tuple[Word, ...], float]:
    """Blocking (seconds of CPU for a long message): run it off the event loop. Returns the text, the words
    (times in seconds from the start of the message) and the CPU seconds spent."""
    recognizer = engine.recognizer(SAMPLE_RATE)
    pcm = read_pcm(path)
    finals: list[TranscriptFinal] = []
    for offset in range(0, len(pcm), _CHUNK_BYTES):
        result = recognizer.accept(pcm[offset : offset + _CHUNK_BYTES])
        if isinstance(result, TranscriptFinal) and result.text:
            finals.append(result)
    last = recognizer.finish()
    if last is not None:
        finals.append(last)
    text = " ".join(final.text for final in finals)
    words = tuple(word for final in finals for word in final.words)
    return text, words, recognizer.cpu_seconds
