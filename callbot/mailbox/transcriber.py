"""Transcribing a recorded message: the full text, and each word with its times and confidence."""

from __future__ import annotations

from pathlib import Path

from callbot.mailbox.recording import SAMPLE_RATE, read_pcm
from callbot.speech.transcription import Transcriber, Transcript


def transcribe_file(transcriber: Transcriber, path: Path, language: str) -> Transcript:
    """Blocking (seconds for a long message): run it off the event loop. Returns the text, the words (times in
    seconds from the start of the message) and the seconds the engine spent."""
    return transcriber.transcribe(read_pcm(path), SAMPLE_RATE, language)
