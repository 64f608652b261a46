"""G.711 mu-law against audioop, soxr resampling, and X-Twilio-Signature against Twilio's own library."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from twilio.request_validator import RequestValidator

from telephony.g711 import pcm16_to_ulaw, ulaw_to_pcm16
from telephony.resample import resample_pcm16
from telephony.twilio_signature import compute_signature, is_valid_signature

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import audioop


def sine(freq: float, rate: int, seconds: float = 1.0, amplitude: float = 10000) -> bytes:
    t = np.arange(int(rate * seconds)) / rate
    return (amplitude * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def samples(pcm: bytes) -> np.ndarray:
    return np.frombuffer(pcm, dtype="<i2").astype(np.float64)


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x**2)))


# --- G.711 ---------------------------------------------------------------------------------------------


def test_encode_matches_audioop_for_every_int16() -> None:
    pcm = np.arange(-32768, 32768, dtype="<i2").tobytes()
    assert pcm16_to_ulaw(pcm) == audioop.lin2ulaw(pcm, 2)


def test_decode_matches_audioop_for_every_byte() -> None:
    data = bytes(range(256))
    assert ulaw_to_pcm16(data) == audioop.ulaw2lin(data, 2)


def test_sine_survives_mulaw_round_trip() -> None:
    original = samples(sine(440, 8000))
    decoded = samples(ulaw_to_pcm16(pcm16_to_ulaw(sine(440, 8000))))
    snr = 10 * np.log10(np.sum(original**2) / np.sum((original - decoded) ** 2))
    assert snr > 30


# --- resampling ----------------------------------------------------------------------------------------


def test_resample_22050_to_8000_keeps_length_and_pitch() -> None:
    out = samples(resample_pcm16(sine(440, 22050), 22050, 8000))
    assert abs(len(out) - 8000) <= 2
    spectrum = np.abs(np.fft.rfft(out))
    peak = np.fft.rfftfreq(len(out), 1 / 8000)[np.argmax(spectrum)]
    assert abs(peak - 440) <= 5


def test_resample_filters_tone_above_new_nyquist() -> None:
    tone = sine(6000, 22050)
    out = samples(resample_pcm16(tone, 22050, 8000))
    assert rms(out) < 0.01 * rms(samples(tone))


def test_resample_same_rate_returns_input_object() -> None:
    pcm = sine(440, 8000)
    assert resample_pcm16(pcm, 8000, 8000) is pcm


# --- X-Twilio-Signature --------------------------------------------------------------------------------

TOKEN = "12345"
DOC_URL = "https://mycompany.com/myapp.php?foo=1&bar=2"
DOC_PARAMS = {
    "CallSid": "CA1234567890ABCDE",
    "Caller": "+12349013030",
    "Digits": "1234",
    "From": "+12349013030",
    "To": "+18005551212",
}
DOC_SIGNATURE = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="


@pytest.mark.parametrize(
    ("url", "params"),
    [
        (DOC_URL, DOC_PARAMS),
        ("https://example.com/voice", {"CallSid": "CA1", "From": "+33100000000"}),
        ("https://example.com/voice?a=1&b=two%20words", {"Body": "hello"}),
        ("https://example.com/voice", {"Body": "Crédit à la consommation — ça va ? 日本"}),
        ("https://example.com:8443/voice", {"z": "1", "a": "2", "M": "3"}),
        ("https://example.com/voice", {}),
        ("wss://example.com/media?token=abc", None),
    ],
    ids=["documented", "plain", "query", "unicode", "port_and_order", "empty", "websocket_none"],
)
def test_compute_signature_matches_twilio_library(url: str, params: dict[str, str] | None) -> None:
    expected = RequestValidator(TOKEN).compute_signature(url, params if params is not None else {})
    assert compute_signature(TOKEN, url, params) == expected


def test_documented_example_signature() -> None:
    assert compute_signature(TOKEN, DOC_URL, DOC_PARAMS) == DOC_SIGNATURE


@pytest.mark.parametrize(
    ("token", "url", "params", "signature", "valid"),
    [
        (TOKEN, DOC_URL, DOC_PARAMS, DOC_SIGNATURE, True),
        (TOKEN, "https://mycompany.com:443/myapp.php?foo=1&bar=2", DOC_PARAMS, DOC_SIGNATURE, True),
        ("54321", DOC_URL, DOC_PARAMS, DOC_SIGNATURE, False),
        (TOKEN, DOC_URL, {**DOC_PARAMS, "Digits": "9999"}, DOC_SIGNATURE, False),
        (TOKEN, DOC_URL, DOC_PARAMS, None, False),
        (TOKEN, DOC_URL, DOC_PARAMS, "", False),
    ],
    ids=["documented", "explicit_443", "wrong_token", "tampered_param", "none_signature", "empty_signature"],
)
def test_is_valid_signature(token: str, url: str, params: dict[str, str], signature: str | None, valid: bool) -> None:
    assert is_valid_signature(token, url, params, signature) is valid


def test_a_law_follows_g711() -> None:
    """A-law (PCMA, Europe's default): the reference values of ITU-T G.711, and every code round-trips."""
    from telephony.g711 import alaw_to_pcm16, pcm16_to_alaw

    decoded = np.frombuffer(alaw_to_pcm16(bytes([0xD5, 0x55, 0xAA, 0x2A])), dtype="<i2").tolist()
    assert decoded == [8, -8, 32256, -32256]  # the smallest steps either side of zero, and full scale
    assert pcm16_to_alaw(np.array([0, -1, 32767, -32768], dtype="<i2").tobytes()) == bytes([0xD5, 0x55, 0xAA, 0x2A])
    codes = bytes(range(256))
    assert pcm16_to_alaw(alaw_to_pcm16(codes)) == codes
