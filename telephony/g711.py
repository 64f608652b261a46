"""G.711 mu-law, as carried by phone lines (and Twilio Media Streams), vectorised with numpy."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

_BIAS = 0x84
_CLIP14 = 8159
_SEGMENT_ENDS = np.array([0x3F, 0x7F, 0xFF, 0x1FF, 0x3FF, 0x7FF, 0xFFF, 0x1FFF])


def _decode_table() -> npt.NDArray[np.int16]:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _BIAS) << exponent) - _BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _encode_table() -> npt.NDArray[np.uint8]:
    # The CCITT reference quantiser (Sun's g711.c, as in most telephony stacks), on 14-bit magnitudes.
    sample = np.arange(-32768, 32768, dtype=np.int32)
    value = sample >> 2
    mask = np.where(value < 0, 0x7F, 0xFF)
    value = np.minimum(np.abs(value), _CLIP14) + (_BIAS >> 2)
    segment = np.searchsorted(_SEGMENT_ENDS, value)
    mantissa = (value >> (np.minimum(segment, 7) + 1)) & 0x0F
    encoded = np.where(segment >= 8, 0x7F, (segment << 4) | mantissa) ^ mask
    # index by the sample's uint16 bit pattern so lookups need no offset
    table = np.empty(65536, dtype=np.uint8)
    table[sample.astype(np.uint16)] = encoded.astype(np.uint8)
    return table


_DECODE = _decode_table()
_ENCODE = _encode_table()


def ulaw_to_pcm16(data: bytes) -> bytes:
    """mu-law bytes to 16-bit little-endian PCM (two bytes per input byte)."""
    return _DECODE[np.frombuffer(data, dtype=np.uint8)].astype("<i2").tobytes()


def pcm16_to_ulaw(data: bytes) -> bytes:
    """16-bit little-endian PCM to mu-law bytes (one byte per sample)."""
    samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
    return _ENCODE[samples.view(np.uint16)].tobytes()
