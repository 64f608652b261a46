"""Speech synthesis with piper: one voice per process, sentence by sentence, with a cache for fixed prompts."""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path

from callbot.errors import ModelMissingError, SpeechEngineError


class PiperSpeaker:
    """A loaded piper voice. ``speak`` yields 16-bit PCM at ``sample_rate``, one chunk per sentence."""

    def __init__(self, voice_path: Path, cache_entries: int = 256, disk_cache: Path | None = None) -> None:
        from piper import PiperVoice

        config_path = Path(f"{voice_path}.json")
        if not voice_path.is_file() or not config_path.is_file():
            raise ModelMissingError(f"piper voice {voice_path} (and {config_path.name} beside it) not found")
        started = time.perf_counter()
        try:
            self._voice = PiperVoice.load(str(voice_path), config_path=str(config_path))
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise SpeechEngineError(f"piper could not load {voice_path}: {exc}") from exc
        self.voice_path = voice_path
        self.sample_rate: int = self._voice.config.sample_rate
        self.load_seconds = time.perf_counter() - started
        self._cache: OrderedDict[str, tuple[bytes, ...]] = OrderedDict()
        self._cache_entries = cache_entries
        self._lock = threading.Lock()
        self.cache_hits = 0
        self.disk_hits = 0
        self._disk_cache = disk_cache
        stat = voice_path.stat()
        self._voice_key = f"{voice_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        self.cpu_seconds = 0.0
        self.audio_seconds = 0.0

    def speak(self, text: str) -> Iterator[bytes]:
        """Blocking: run off the event loop. Cached texts come back without synthesis."""
        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                self.cache_hits += 1
        if cached is not None:
            yield from cached
            return
        chunks: list[bytes] = []
        for chunk in self._synthesize(text):
            chunks.append(chunk)
            yield chunk
        self._remember(text, tuple(chunks))

    def warm(self, texts: list[str]) -> None:
        """Synthesize fixed prompts ahead of the first call. With a disk cache, prompts synthesized by an earlier
        run of the same voice are read back instead (only these fixed texts are written to disk, never what a
        caller said)."""
        for text in texts:
            if self.is_cached(text):
                continue
            stored = self._read_disk(text)
            if stored is not None:
                self.disk_hits += 1
                self._remember(text, stored)
                continue
            chunks = tuple(self.speak(text))
            self._write_disk(text, chunks)

    def _disk_path(self, text: str) -> Path | None:
        if self._disk_cache is None:
            return None
        digest = hashlib.sha256(f"{self._voice_key}\n{text}".encode()).hexdigest()
        return self._disk_cache / f"{digest}.pcm"

    def _read_disk(self, text: str) -> tuple[bytes, ...] | None:
        path = self._disk_path(text)
        if path is None or not path.is_file():
            return None
        data = path.read_bytes()
        chunks, offset = [], 0
        while offset + 4 <= len(data):
            (size,) = struct.unpack_from("<I", data, offset)
            chunks.append(data[offset + 4 : offset + 4 + size])
            offset += 4 + size
        return tuple(chunks) if offset == len(data) and chunks else None

    def _write_disk(self, text: str, chunks: tuple[bytes, ...]) -> None:
        path = self._disk_path(text)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=path.parent, delete=False, suffix=".tmp") as out:
                for chunk in chunks:
                    out.write(struct.pack("<I", len(chunk)) + chunk)
            os.replace(out.name, path)
        except OSError:
            pass  # a cache: the prompt is synthesized again next time

    def is_cached(self, text: str) -> bool:
        with self._lock:
            return text in self._cache

    def cached(self, text: str) -> tuple[bytes, ...] | None:
        """The audio of ``text`` if it is cached (counted as a hit), else None."""
        with self._lock:
            chunks = self._cache.get(text)
            if chunks is not None:
                self._cache.move_to_end(text)
                self.cache_hits += 1
            return chunks

    def _synthesize(self, text: str) -> Iterator[bytes]:
        chunks = iter(self._voice.synthesize(text))
        while True:
            # measured per step, in the thread that runs it: the caller may resume us from another thread
            started = time.thread_time()
            try:
                chunk = next(chunks, None)
            except Exception as exc:  # onnxruntime and espeak raise assorted types
                raise SpeechEngineError(f"piper failed to synthesize {text[:40]!r}: {exc}") from exc
            finally:
                self.cpu_seconds += time.thread_time() - started
            if chunk is None:
                return
            pcm: bytes = chunk.audio_int16_bytes
            self.audio_seconds += len(pcm) / 2 / self.sample_rate
            yield pcm

    def _remember(self, text: str, chunks: tuple[bytes, ...]) -> None:
        with self._lock:
            self._cache[text] = chunks
            while len(self._cache) > self._cache_entries:
                self._cache.popitem(last=False)
