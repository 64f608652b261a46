"""``callbot speech transcribe``: check a speech model on one's own recordings."""

from __future__ import annotations

import argparse
import json
import wave
from pathlib import Path
from typing import Any

from callbot.errors import CallbotError


def add_commands(commands: Any) -> None:
    speech = commands.add_parser("speech", help="speech recognition on recordings").add_subparsers(title="speech")
    transcribe = speech.add_parser(
        "transcribe", help="transcribe a WAV file: the text, each word's times and confidence"
    )
    transcribe.add_argument("audio", type=Path, help="a 16-bit mono WAV file (any rate; 8 kHz phone audio is fine)")
    transcribe.add_argument(
        "--engine",
        choices=["auto", "vosk", "whisper"],
        default="auto",
        help="auto: Vosk when the language has a Vosk model, else Whisper (default)",
    )
    transcribe.add_argument("--language", help="the language spoken (default: the bot's language)")
    transcribe.add_argument("--json", action="store_true", help='{"text": ..., "words": [{"word", "start", ...}]}')
    transcribe.set_defaults(run=_transcribe)


def read_wav(path: Path) -> tuple[bytes, int]:
    """The 16-bit mono samples of a WAV file and their rate; CallbotError says what is wrong with it."""
    try:
        with wave.open(str(path), "rb") as wav:
            if wav.getsampwidth() != 2 or wav.getnchannels() != 1:
                raise CallbotError(
                    f"{path}: {wav.getnchannels()} channel(s) of {8 * wav.getsampwidth()} bits; expected 16-bit mono "
                    f"(convert it: sox {path} -b 16 -c 1 out.wav)"
                )
            return wav.readframes(wav.getnframes()), wav.getframerate()
    except FileNotFoundError as exc:
        raise CallbotError(f"{path}: no such file") from exc
    except (wave.Error, EOFError) as exc:
        raise CallbotError(f"{path} is not a PCM WAV file: {exc}") from exc


def _transcribe(args: argparse.Namespace) -> int:
    from callbot.settings import Settings
    from callbot.speech.transcription import load_transcriber
    from routing.bot_folder import load_bot_folder

    settings = Settings()
    pcm, rate = read_wav(args.audio)
    language = args.language or load_bot_folder(settings.bot_dir).bot.language
    transcriber = load_transcriber(settings, language, args.engine)
    text, words, seconds = transcriber.transcribe(pcm, rate, language)
    if args.json:
        rows = [{"word": w.word, "start": w.start, "end": w.end, "confidence": round(w.conf, 4)} for w in words]
        duration = len(pcm) / 2 / rate
        info = {"engine": transcriber.engine, "model": transcriber.model, "language": language}
        print(json.dumps({"text": text, "words": rows, **info, "audio_s": duration, "seconds": round(seconds, 3)}))
        return 0
    print(text)
    for w in words:
        print(f"{w.start:7.2f} {w.end:7.2f}  {w.conf:4.2f}  {w.word}")
    return 0
