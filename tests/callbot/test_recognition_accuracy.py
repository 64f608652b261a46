"""Recognition accuracy with the product's own models. They cannot be downloaded on offline machines:
these tests skip there, with the command that installs the model, and must pass where it is installed."""

from __future__ import annotations

from pathlib import Path

import pytest

from callbot.model_store import find_vosk_model
from callbot.speech.vosk_asr import VoskEngine
from tests.callbot.test_speech_engines import phone_line, recognise
from tests.conftest import ROOT, SPEECH


def word_error_rate(reference: str, hypothesis: str) -> float:
    ref, hyp = reference.split(), hypothesis.split()
    distance = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, 1):
        previous, distance[0] = distance[0], i
        for j, hyp_word in enumerate(hyp, 1):
            previous, distance[j] = (
                distance[j],
                min(distance[j] + 1, distance[j - 1] + 1, previous + (ref_word != hyp_word)),
            )
    return distance[-1] / max(len(ref), 1)


def installed_model(language: str) -> VoskEngine:
    path = find_vosk_model(ROOT / "models", language)
    if path is None:
        pytest.skip(f"no Vosk model for '{language}' installed: run `callbot models pull {language}`")
    return VoskEngine(path)


def clips(language: str) -> list[tuple[Path, str]]:
    rows = (SPEECH / language / "transcripts.tsv").read_text(encoding="utf-8").splitlines()
    return [
        (SPEECH / language / name, text)
        for name, text in (row.split("\t", 1) for row in rows)
        if name.startswith("stp-")
    ]


@pytest.mark.parametrize(
    "language",
    [
        pytest.param("fr", marks=pytest.mark.requires_fr_model),
        pytest.param("en", marks=pytest.mark.requires_en_model),
    ],
)
def test_phone_line_word_error_rate(language):
    engine = installed_model(language)
    errors = []
    for path, reference in clips(language):
        _, finals = recognise(engine, phone_line(path))
        errors.append(word_error_rate(reference.replace("-", " "), " ".join(f.text for f in finals)))
    assert sum(errors) / len(errors) < 0.35


def test_word_error_rate_itself():
    assert word_error_rate("allume la lumière", "allume la lumière") == 0
    assert word_error_rate("allume la lumière", "allume lumière") == pytest.approx(1 / 3)
    assert word_error_rate("a b", "a b c d") == 1.0
