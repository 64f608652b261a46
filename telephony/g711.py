"""G.711 mu-law (North America, Japan; Twilio Media Streams) and A-law (Europe: PCMA), as carried by phone lines,
vectorised with numpy."""

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


def _byte_tables(table: npt.NDArray[np.int16]) -> tuple[bytes, bytes]:
    """The low and the high byte of each code's 16-bit sample, as ``bytes.translate`` tables."""
    samples = table.astype("<i2").view(np.uint8).reshape(-1, 2)
    return samples[:, 0].tobytes(), samples[:, 1].tobytes()


def _expand(data: bytes, low: bytes, high: bytes) -> bytes:
    # two translations and two strided copies, all in C: a third of the time of a numpy lookup on a 20 ms frame,
    # and no numpy call per frame on the event loop
    out = bytearray(2 * len(data))
    out[0::2] = data.translate(low)
    out[1::2] = data.translate(high)
    return bytes(out)


_ULAW_LOW, _ULAW_HIGH = _byte_tables(_DECODE)


def ulaw_to_pcm16(data: bytes) -> bytes:
    """mu-law bytes to 16-bit little-endian PCM (two bytes per input byte)."""
    return _expand(data, _ULAW_LOW, _ULAW_HIGH)


def pcm16_to_ulaw(data: bytes) -> bytes:
    """16-bit little-endian PCM to mu-law bytes (one byte per sample)."""
    samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
    return _ENCODE[samples.view(np.uint16)].tobytes()


def _alaw_decode_table() -> npt.NDArray[np.int16]:
    # ITU-T G.711 A-law expansion (the reference alaw2linear), on all 256 codes
    a = np.arange(256, dtype=np.int32) ^ 0x55
    exponent = (a & 0x70) >> 4
    mantissa = a & 0x0F
    magnitude = np.where(exponent == 0, (mantissa << 4) + 8, ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0))
    return np.where(a & 0x80, magnitude, -magnitude).astype(np.int16)


def _alaw_encode_table() -> npt.NDArray[np.uint8]:
    # ITU-T G.711 A-law compression (the reference linear2alaw), on 13-bit magnitudes
    sample = np.arange(-32768, 32768, dtype=np.int32)
    negative = sample < 0
    magnitude = np.where(negative, -sample - 1, sample) >> 3  # 0..4095
    exponent = np.zeros_like(magnitude)
    for shift in range(1, 8):
        exponent = np.where(magnitude >= (16 << shift), shift, exponent)
    mantissa = np.where(exponent == 0, magnitude >> 1, magnitude >> exponent) & 0x0F
    code = (exponent << 4) | mantissa
    code = np.where(negative, code, code | 0x80) ^ 0x55
    table = np.empty(65536, dtype=np.uint8)
    table[sample.astype(np.uint16)] = code.astype(np.uint8)
    return table


_ALAW_DECODE = _alaw_decode_table()
_ALAW_ENCODE = _alaw_encode_table()
_ALAW_LOW, _ALAW_HIGH = _byte_tables(_ALAW_DECODE)


def alaw_to_pcm16(data: bytes) -> bytes:
    """A-law bytes to 16-bit little-endian PCM (two bytes per input byte)."""
    return _expand(data, _ALAW_LOW, _ALAW_HIGH)


def pcm16_to_alaw(data: bytes) -> bytes:
    """16-bit little-endian PCM to A-law bytes (one byte per sample)."""
    samples = np.frombuffer(data[: len(data) - len(data) % 2], dtype="<i2")
    return _ALAW_ENCODE[samples.view(np.uint16)].tobytes()
