"""Masking payment data in message transcripts: card numbers and bank account numbers, written or spoken.

What is masked:
- a run of 13 to 19 digits that passes the Luhn check (a payment card number),
- a run of 20 or more digits (a French RIB or the digits of an IBAN said aloud),
- an IBAN written with its letters (``FR76 3000 6000 0112 3456 7890 189``) whose mod-97 check passes.

Phone numbers (10 digits), contract numbers and amounts stay: advisors need them to call back. Spoken numbers
("quatre neuf sept deux ...") are read as digits first, so that a card said aloud is found like a written one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from callbot.frames import Word
from nlu.spoken_numbers import digits_from_speech

MASK_WORD = "•••"
LABELS = {
    "fr": {"card": "[numéro de carte masqué]", "account": "[coordonnées bancaires masquées]"},
    "en": {"card": "[card number removed]", "account": "[bank details removed]"},
}
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_DIGIT_RUN = re.compile(r"\d(?:[ .-]?\d)*")
_CONNECTORS = {"fr": {"et"}, "en": {"and", "oh", "o"}}


@dataclass(frozen=True, slots=True)
class Masked:
    text: str
    words: tuple[Word, ...]
    found: tuple[str, ...]
    """What was masked ("card", "account"), in order."""


def luhn_valid(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char)
        if index % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    compact = iban.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return int(number) % 97 == 1


def classify_digits(digits: str) -> str | None:
    """``"card"``, ``"account"`` or None for a run of digits."""
    if 13 <= len(digits) <= 19 and luhn_valid(digits):
        return "card"
    if len(digits) >= 20:
        return "account"
    return None


def mask_text(text: str, language: str) -> tuple[str, list[str]]:
    """``text`` with payment data replaced by a label; spoken numbers are turned into digits first."""
    labels = LABELS.get(language, LABELS["en"])
    found: list[str] = []

    def iban(match: re.Match[str]) -> str:
        if iban_valid(match.group(0)):
            found.append("account")
            return labels["account"]
        return match.group(0)

    def digits(match: re.Match[str]) -> str:
        kind = classify_digits(re.sub(r"\D", "", match.group(0)))
        if kind is None:
            return match.group(0)
        found.append(kind)
        return labels[kind]

    as_digits = digits_from_speech(text, language)
    return _DIGIT_RUN.sub(digits, _IBAN.sub(iban, as_digits)), found


def mask_words(words: Sequence[Word], language: str) -> tuple[Word, ...]:
    """Word timings kept, the words of a spoken card or account number replaced by ``•••``."""
    out = list(words)
    for start, end in _number_runs(words, language):
        run_digits = re.sub(r"\D", "", digits_from_speech(" ".join(w.word for w in words[start:end]), language))
        if _contains_payment_data(run_digits):
            for index in range(start, end):
                w = out[index]
                out[index] = Word(MASK_WORD, w.start, w.end, w.conf)
    return tuple(out)


def mask_transcript(text: str, words: Sequence[Word], language: str) -> Masked:
    masked_text, found = mask_text(text, language)
    return Masked(masked_text, mask_words(words, language), tuple(found))


def _contains_payment_data(digits: str) -> bool:
    if classify_digits(digits) is not None:
        return True
    # a card said inside a longer run ("mon numéro c'est ... et la date ..."): look at every window
    return any(
        classify_digits(digits[i : i + size]) == "card"
        for size in range(13, 20)
        for i in range(0, max(len(digits) - size + 1, 0))
    )


def _is_number_word(word: str, language: str) -> bool:
    if any(c.isdigit() for c in word):
        return True
    converted = digits_from_speech(f"zéro {word}" if language == "fr" else f"zero {word}", language)
    # a number word continues a digit run ("zéro quatre" -> "04"); other words stay words
    return bool(re.fullmatch(r"[\d ]+", converted))


def _number_runs(words: Sequence[Word], language: str) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    start: int | None = None
    connectors = _CONNECTORS.get(language, set())
    for index, word in enumerate(words):
        token = word.word.lower()
        is_number = _is_number_word(token, language) or (start is not None and token in connectors)
        if is_number and start is None:
            start = index
        elif not is_number and start is not None:
            runs.append(_trimmed(words, start, index, connectors))
            start = None
    if start is not None:
        runs.append(_trimmed(words, start, len(words), connectors))
    return runs


def _trimmed(words: Sequence[Word], start: int, end: int, connectors: set[str]) -> tuple[int, int]:
    """A run without the connectors that end it ("... neuf trois et mon numéro": "et" is not part of it)."""
    while end > start and words[end - 1].word.lower() in connectors:
        end -= 1
    return start, end
