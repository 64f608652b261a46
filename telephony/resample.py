"""Sample-rate conversion of 16-bit PCM (soxr, high quality), used by the codecs only."""

from __future__ import annotations

import numpy as np
import soxr


def resample_pcm16(pcm: bytes, from_rate: int, to_rate: int) -> bytes:
    """Convert mono 16-bit little-endian PCM from one rate to another."""
    if from_rate == to_rate or not pcm:
        return pcm
    samples = np.frombuffer(pcm[: len(pcm) - len(pcm) % 2], dtype="<i2")
    converted = soxr.resample(samples, from_rate, to_rate, quality="HQ")
    return np.asarray(converted, dtype="<i2").tobytes()
