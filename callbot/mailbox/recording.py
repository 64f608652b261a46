"""Messages written to disk as they arrive: a WAV file (16-bit PCM, 8 kHz, mono) and a metadata file beside it.

The WAV header is written first with placeholder sizes; audio is appended and handed to the operating system
every 100 ms (``flush``: it survives the death of the process), and the owner calls ``sync`` every second from a
thread (``fsync``: it survives a power cut), so that a crash, ``kill -9`` or a dropped connection loses at most
the last second. The
sizes are set when the message ends, or by ``repair`` when a crash left them unset. The metadata file
(``<call id>.json``) lets recovery file a message even when the database was down while it was recorded.
"""

from __future__ import annotations

import json
import os
import struct
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

SAMPLE_RATE = 8000
SAMPLE_BYTES = 2
HEADER_BYTES = 44
_FLUSH_EVERY_S = 0.1


@dataclass(frozen=True, slots=True)
class MessageMeta:
    item_id: str
    call_id: str
    caller: str
    called: str
    reason: str
    language: str
    started_at: str  # ISO, UTC


def wav_header(data_bytes: int) -> bytes:
    return b"RIFF" + struct.pack(
        "<I4s4sIHHIIHH4sI",
        36 + data_bytes,
        b"WAVE",
        b"fmt ",
        16,
        1,  # PCM
        1,  # mono
        SAMPLE_RATE,
        SAMPLE_RATE * SAMPLE_BYTES,
        SAMPLE_BYTES,
        8 * SAMPLE_BYTES,
        b"data",
        data_bytes,
    )


class MessageRecording:
    """One message being recorded. Not thread-safe: the call session owns it."""

    def __init__(self, path: Path, meta: MessageMeta) -> None:
        self.path = path
        self.meta = meta
        path.parent.mkdir(parents=True, exist_ok=True)
        write_meta(path.with_suffix(".json"), meta)
        self._file = path.open("wb")
        self._file.write(wav_header(0))
        self._file.flush()
        self.data_bytes = 0
        self._flushed_at = time.monotonic()
        self.closed = False

    @property
    def duration_s(self) -> float:
        return self.data_bytes / SAMPLE_BYTES / SAMPLE_RATE

    def write(self, pcm: bytes) -> None:
        if self.closed:
            return
        self._file.write(pcm)
        self.data_bytes += len(pcm)
        now = time.monotonic()
        if now - self._flushed_at >= _FLUSH_EVERY_S:
            self._file.flush()  # in the OS from here: survives the death of this process
            self._flushed_at = now

    def sync(self) -> None:
        """Blocking (milliseconds): run it from a thread. Puts what was flushed on the disk."""
        try:
            if not self.closed:
                os.fsync(self._file.fileno())
        except (OSError, ValueError):  # closed meanwhile by the call
            pass

    def close(self) -> float:
        """Write the final sizes; the message's duration in seconds."""
        if not self.closed:
            self._file.seek(0)
            self._file.write(wav_header(self.data_bytes))
            self._file.flush()
            os.fsync(self._file.fileno())
            self._file.close()
            self.closed = True
        return self.duration_s


def write_meta(path: Path, meta: MessageMeta) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(asdict(meta), ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def read_meta(path: Path) -> MessageMeta | None:
    try:
        data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        return MessageMeta(**data)
    except (OSError, ValueError, TypeError):
        return None


def repair(path: Path) -> float:
    """Set the sizes of a WAV that a crash left unfinished (whole samples only); its duration in seconds."""
    size = path.stat().st_size
    data_bytes = max(size - HEADER_BYTES, 0)
    data_bytes -= data_bytes % SAMPLE_BYTES
    with path.open("r+b") as wav:
        wav.seek(0)
        wav.write(wav_header(data_bytes))
        wav.truncate(HEADER_BYTES + data_bytes)
    return data_bytes / SAMPLE_BYTES / SAMPLE_RATE


def read_pcm(path: Path) -> bytes:
    """The samples of a message (16-bit PCM at 8 kHz), whatever its header says."""
    with path.open("rb") as wav:
        wav.seek(HEADER_BYTES)
        data = wav.read()
    return data[: len(data) - len(data) % SAMPLE_BYTES]


def beep(seconds: float = 0.4, frequency: float = 1000.0, level: float = 0.3) -> bytes:
    """The tone that tells the caller to speak, as 16-bit PCM at 8 kHz (with short fades: no clicks)."""
    import numpy as np

    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    tone = np.sin(2 * np.pi * frequency * t) * level
    fade = min(len(t) // 10, int(0.01 * SAMPLE_RATE))
    if fade:
        ramp = np.linspace(0.0, 1.0, fade)
        tone[:fade] *= ramp
        tone[-fade:] *= ramp[::-1]
    return (tone * 32767).astype("<i2").tobytes()
