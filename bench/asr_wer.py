"""Word error rate and real-time factor of each installed speech engine on the shared French and English clips.

Every clip of ``../shared/data/speech/<lang>`` is transcribed twice: at its own 16 kHz, and as a phone line
carries it (8 kHz through the mu-law round trip) — the mailbox's case. WER is jiwer's, on both sides normalised
the same way (``normalise``: lower case, punctuation removed, apostrophes and hyphens split words, whitespace
collapsed; numbers are left as written, so a Whisper "80 %" against the reference "quatre-vingts pour cent"
counts as errors). The real-time factor is the engine's wall time over the audio's duration (2 CPU threads).

    .venv/bin/python bench/asr_wer.py [--languages fr en] [--engines whisper vosk] [--limit N] [--json]
    .venv/bin/python bench/asr_wer.py --live 10     # the Whisper live mode: end of speech -> first bot audio

``--live N`` places N French calls, 8 s apart, on a served bot whose live turns are heard by Whisper
(``bench/call_latency.py --engine whisper``) and prints the median and p95 from the caller's last voiced frame
to the bot's first audio (the 0.7 s end-of-speech silence, Whisper's reading, NLU and decision).

Engines: ``whisper`` uses CALLBOT_WHISPER_MODEL or the largest model under models/whisper (make setup installs
whisper-base); ``vosk`` uses models/<lang>/vosk (``callbot models pull fr``) and is skipped without one.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
import unicodedata
import wave
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SPEECH = ROOT.parent / "shared" / "data" / "speech"
_PUNCTUATION = re.compile(r"[^\w\s]", re.UNICODE)


def normalise(text: str) -> str:
    """Lower case, apostrophes and hyphens as spaces, no other punctuation, single spaces."""
    text = unicodedata.normalize("NFC", text).lower()
    text = re.sub(r"['’\-]", " ", text)
    text = _PUNCTUATION.sub(" ", text)
    return " ".join(text.split())


def clips(language: str, limit: int | None) -> list[tuple[Path, str]]:
    rows = (SPEECH / language / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    found = [(SPEECH / language / name, text) for name, text in (r.split("\t", 1) for r in rows if "\t" in r)]
    found = [(path, text) for path, text in found if path.is_file()]
    return found[:limit] if limit else found


def read(path: Path, phone: bool) -> tuple[bytes, int]:
    if phone:
        from callbot.simulator import read_wav_as_line_pcm
        from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16

        return ulaw_to_pcm16(pcm16_to_ulaw(read_wav_as_line_pcm(path))), 8000
    with wave.open(str(path), "rb") as wav:
        return wav.readframes(wav.getnframes()), wav.getframerate()


def engines(names: list[str], language: str) -> dict[str, object]:
    from callbot.errors import CallbotError
    from callbot.settings import Settings
    from callbot.speech.transcription import load_transcriber

    settings = Settings()
    loaded: dict[str, object] = {}
    for name in names:
        try:
            loaded[name] = load_transcriber(settings, language, name)  # type: ignore[arg-type]
        except CallbotError as exc:
            print(f"# {name} skipped for {language}: {exc}", file=sys.stderr)
    return loaded


def measure(transcriber: object, language: str, limit: int | None, phone: bool) -> dict[str, object]:
    import jiwer

    refs, hyps, times, audio = [], [], [], 0.0
    for path, reference in clips(language, limit):
        pcm, rate = read(path, phone)
        started = time.perf_counter()
        text, _words, _seconds = transcriber.transcribe(pcm, rate, language)  # type: ignore[attr-defined]
        elapsed = time.perf_counter() - started
        duration = len(pcm) / 2 / rate
        refs.append(normalise(reference))
        hyps.append(normalise(text) or "<empty>")
        times.append(elapsed / duration)
        audio += duration
    return {
        "clips": len(refs),
        "audio_s": round(audio, 1),
        "wer": round(jiwer.wer(refs, hyps), 4),
        "rtf_median": round(statistics.median(times), 3),
        "rtf_p95": round(sorted(times)[max(0, int(len(times) * 0.95) - 1)], 3),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--languages", nargs="+", default=["fr", "en"])
    parser.add_argument("--engines", nargs="+", default=["whisper", "vosk"], choices=["whisper", "vosk"])
    parser.add_argument("--limit", type=int, help="only the first N clips of each language")
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--live", type=int, metavar="N", help="measure the Whisper live mode on N calls instead")
    args = parser.parse_args()
    if args.live:
        import subprocess

        command = [sys.executable, str(ROOT / "bench" / "call_latency.py"), "--engine", "whisper"]
        return subprocess.run([*command, "--calls", str(args.live), "--stagger", "8"], check=False).returncode
    rows = []
    for language in args.languages:
        for name, transcriber in engines(args.engines, language).items():
            for phone in (False, True):
                result = measure(transcriber, language, args.limit, phone)
                model = transcriber.model  # type: ignore[attr-defined]
                row = {"engine": name, "model": model, "language": language, "band": "8k-ulaw" if phone else "16k"}
                rows.append(row | result)
                if not args.json:
                    print(
                        f"{name:8} {model:28} {language} {row['band']:8} clips {result['clips']:3} "
                        f"WER {float(result['wer']):6.1%}  RTF median {result['rtf_median']} p95 {result['rtf_p95']}",
                        flush=True,
                    )
    if args.json:
        print(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
