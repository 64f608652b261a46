"""Spoken numbers in a transcript rewritten as digits, so the NLU's digit regexes can see them.

Vosk writes every number as words ("zéro six douze ...", "four five six ..."), while the entity regexes of the
NLU (contract number, phone numbers) and the amount and date normalisers only understand digits.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import pairwise

_Parse = tuple[int, int] | None
"""A parsed value and the index of the first word after it, or None when nothing parses."""


@dataclass(frozen=True)
class _Lexicon:
    units: Mapping[str, int]
    teens: Mapping[str, int]
    tens: Mapping[str, int]
    hundreds: frozenset[str]
    scales: Mapping[str, int]
    lone_words: frozenset[str]
    """Number words that are also articles or pronouns: kept as words when they stand alone."""
    french: bool
    tail_connector: str = ""
    """The word allowed between a hundred or a scale and what follows ("one hundred and five")."""
    article: str = ""
    """The article that counts as one before a hundred or a scale ("a hundred")."""
    zero_aliases: frozenset[str] = frozenset()
    repeaters: Mapping[str, int] = field(default_factory=dict)

    def is_number_part(self, word: str) -> bool:
        """Whether a piece of a hyphenated word belongs to a number ("quatre-vingt-dix", "twenty-one")."""
        return (
            word in self.units
            or word in self.teens
            or word in self.tens
            or word in self.hundreds
            or word in self.scales
            or (self.french and word == "et")
        )


_FR = _Lexicon(
    units={
        "zéro": 0,
        "zero": 0,
        "un": 1,
        "une": 1,
        "deux": 2,
        "trois": 3,
        "quatre": 4,
        "cinq": 5,
        "six": 6,
        "sept": 7,
        "huit": 8,
        "neuf": 9,
    },
    teens={"dix": 10, "onze": 11, "douze": 12, "treize": 13, "quatorze": 14, "quinze": 15, "seize": 16},
    tens={
        "vingt": 20,
        "vingts": 20,
        "trente": 30,
        "quarante": 40,
        "cinquante": 50,
        "soixante": 60,
        "septante": 70,
        "huitante": 80,
        "octante": 80,
        "nonante": 90,
    },
    hundreds=frozenset({"cent", "cents"}),
    scales={"mille": 10**3, "million": 10**6, "millions": 10**6, "milliard": 10**9, "milliards": 10**9},
    lone_words=frozenset({"un", "une"}),
    french=True,
)

_EN_UNITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_EN_TEENS = ("ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen")
_EN_TENS = ("twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")

_EN = _Lexicon(
    units={word: value for value, word in enumerate(_EN_UNITS)},
    teens={word: value for value, word in enumerate((*_EN_TEENS, "nineteen"), start=10)},
    tens={word: 20 + 10 * index for index, word in enumerate(_EN_TENS)},
    hundreds=frozenset({"hundred"}),
    scales={"thousand": 10**3, "million": 10**6, "billion": 10**9},
    lone_words=frozenset({"one"}),
    french=False,
    tail_connector="and",
    article="a",
    zero_aliases=frozenset({"oh", "o"}),
    repeaters={"double": 2, "triple": 3},
)

_LEXICONS: Mapping[str, _Lexicon] = {"fr": _FR, "en": _EN}


@dataclass(frozen=True)
class _Group:
    """One number of a run: its digits and the words it was read from."""

    digits: str
    start: int
    end: int
    single_digit: bool
    """Said digit by digit ("quatre", "double three"): joins neighbouring single digits without a space."""


def digits_from_speech(text: str, language: str) -> str:
    """Rewrite the spoken numbers of a transcript as digits; every other word is kept, in order, single-spaced.

    Languages "fr" and "en"; any other language returns ``text`` unchanged.

    Ambiguity rule: number words are read greedily into one value for as long as the next word can continue it
    ("mille deux cents" -> 1200, "trois cent quarante cinq mille" -> 345000, "trente quatre" -> 34: after a tens
    word, a unit 1-9 continues it; after "soixante" / "quatre-vingt", 10-19 too). A new number starts when the next
    word cannot continue the current one ("douze trente" -> 12 then 30, "quatre cinq" -> 4 then 5). Consecutive
    numbers form a run: numbers said as a single digit word are joined without a space ("zéro six" -> "06",
    "four five six" -> "456"), every other number is separated by a space ("06 12 34 56 78"). A non-number word
    ends the run. "un" / "une" / "one" standing alone stays a word ("j'ai un problème"); "oh" / "o" is zero only
    next to a digit word; "et" / "and" / "a" count only inside a number; ordinals ("premier", "first") stay words.
    """
    lexicon = _LEXICONS.get(language)
    if lexicon is None:
        return text
    words, originals = _split(text, lexicon)
    out: list[str] = []
    run: list[_Group] = []
    index = 0
    while index < len(words):
        group = _group_at(words, index, lexicon, after_digit=bool(run) and run[-1].single_digit)
        if group is None:
            if run:
                out.append(_render(run, words, originals, lexicon))
                run = []
            out.append(originals[index])
            index += 1
        else:
            run.append(group)
            index = group.end
    if run:
        out.append(_render(run, words, originals, lexicon))
    return " ".join(out)


def _split(text: str, lexicon: _Lexicon) -> tuple[list[str], list[str]]:
    """Lower-cased lookup keys and the original words; hyphenated numbers are split into their parts."""
    keys: list[str] = []
    originals: list[str] = []
    for token in text.split():
        key = unicodedata.normalize("NFC", token.lower())
        parts = key.split("-")
        if len(parts) > 1 and all(lexicon.is_number_part(part) for part in parts):
            keys.extend(parts)
            originals.extend(token.split("-"))
        else:
            keys.append(key)
            originals.append(token)
    return keys, originals


def _render(run: Sequence[_Group], words: Sequence[str], originals: Sequence[str], lexicon: _Lexicon) -> str:
    first = run[0]
    if len(run) == 1 and first.end == first.start + 1 and words[first.start] in lexicon.lone_words:
        return originals[first.start]
    text = first.digits
    for previous, group in pairwise(run):
        text += ("" if previous.single_digit and group.single_digit else " ") + group.digits
    return text


def _group_at(words: Sequence[str], i: int, lexicon: _Lexicon, *, after_digit: bool) -> _Group | None:
    """The number starting at ``words[i]``, if any."""
    word, following = _at(words, i), _at(words, i + 1)
    if word in lexicon.repeaters and following in lexicon.units:
        return _Group(str(lexicon.units[following]) * lexicon.repeaters[word], i, i + 2, single_digit=True)
    # "double oh seven", but not a lone "double oh"
    zeros_follow = following in lexicon.zero_aliases and (after_digit or _digit_follows(words, i + 2, lexicon))
    if word in lexicon.repeaters and zeros_follow:
        return _Group("0" * lexicon.repeaters[word], i, i + 2, single_digit=True)
    if word in lexicon.zero_aliases:
        if after_digit or _digit_follows(words, i + 1, lexicon):
            return _Group("0", i, i + 1, single_digit=True)
        return None
    number = _compound(words, i, lexicon)
    if number is None:
        return None
    value, end = number
    return _Group(str(value), i, end, single_digit=end == i + 1 and value < 10)


def _digit_follows(words: Sequence[str], i: int, lexicon: _Lexicon) -> bool:
    """Whether a digit word comes next, past any further "oh" ("oh oh seven")."""
    while _at(words, i) in lexicon.zero_aliases:
        i += 1
    return _at(words, i) in lexicon.units or _at(words, i) in lexicon.repeaters


def _at(words: Sequence[str], i: int) -> str:
    return words[i] if 0 <= i < len(words) else ""


def _compound(words: Sequence[str], i: int, lexicon: _Lexicon) -> _Parse:
    """A whole number: chunks below a thousand, each optionally scaled by a strictly decreasing scale word."""
    total, end, last_scale, j = 0, i, 0, i
    while True:
        chunk = _chunk(words, j, lexicon)
        k = j if chunk is None else chunk[1]
        scale = lexicon.scales.get(_at(words, k), 0)
        if scale and (not last_scale or scale < last_scale) and (chunk is None or chunk[0] > 0):
            total += scale * (1 if chunk is None else chunk[0])
            last_scale, end = scale, k + 1
            j = _skip_connector(words, end, lexicon)
            continue
        if chunk is not None and (end == i or 0 < chunk[0] < last_scale):
            return total + chunk[0], k
        return (total, end) if end > i else None


def _skip_connector(words: Sequence[str], j: int, lexicon: _Lexicon) -> int:
    """Past an "and" that a number follows ("two thousand and five"); otherwise ``j``."""
    if lexicon.tail_connector and _at(words, j) == lexicon.tail_connector and _chunk(words, j + 1, lexicon):
        return j + 1
    return j


def _chunk(words: Sequence[str], i: int, lexicon: _Lexicon) -> _Parse:
    """A value below a thousand, or a count of hundreds ("trois cent quarante cinq", "nineteen hundred")."""
    following = _at(words, i + 1)
    low: _Parse
    if (
        lexicon.article
        and _at(words, i) == lexicon.article
        and (following in lexicon.hundreds or following in lexicon.scales)
    ):
        low = (1, i + 1)
    else:
        low = _below_hundred(words, i, lexicon)
    j = i if low is None else low[1]
    if _at(words, j) not in lexicon.hundreds or (low is not None and low[0] == 0):
        return low
    return _with_tail(words, 100 * (1 if low is None else low[0]), j + 1, lexicon)


def _with_tail(words: Sequence[str], value: int, j: int, lexicon: _Lexicon) -> tuple[int, int]:
    """``value`` plus the non-zero number below a hundred at ``j`` (past an optional "and"), if any."""
    start = j + 1 if lexicon.tail_connector and _at(words, j) == lexicon.tail_connector else j
    tail = _below_hundred(words, start, lexicon)
    if tail is None or tail[0] == 0:
        return value, j
    return value + tail[0], tail[1]


def _below_hundred(words: Sequence[str], i: int, lexicon: _Lexicon) -> _Parse:
    """A value 0-99: a unit, a teen, or a tens word with what may follow it."""
    tens = _tens(words, i, lexicon)
    if tens is None:
        return _unit_or_teen(words, i, lexicon)
    value, j, takes_teens = tens
    if lexicon.french and _at(words, j) == "et":
        extra = {"un": 1, "une": 1, "onze": 11 if takes_teens else 0}.get(_at(words, j + 1), 0)
        if extra:
            return value + extra, j + 2
    tail = _unit_or_teen(words, j, lexicon)
    if tail is not None and 1 <= tail[0] <= (19 if takes_teens else 9):
        return value + tail[0], tail[1]
    return value, j


def _tens(words: Sequence[str], i: int, lexicon: _Lexicon) -> tuple[int, int, bool] | None:
    """A tens word: its value, the next index, and whether 10-19 may follow (soixante-dix, quatre-vingt-dix)."""
    word = _at(words, i)
    if lexicon.french and word == "quatre" and _at(words, i + 1) in ("vingt", "vingts"):
        return 80, i + 2, True
    if word in lexicon.tens:
        return lexicon.tens[word], i + 1, lexicon.french and word == "soixante"
    return None


def _unit_or_teen(words: Sequence[str], i: int, lexicon: _Lexicon) -> _Parse:
    word, following = _at(words, i), _at(words, i + 1)
    if lexicon.french and word == "dix" and lexicon.units.get(following, 0) >= 7:
        return 10 + lexicon.units[following], i + 2
    if word in lexicon.teens:
        return lexicon.teens[word], i + 1
    if word in lexicon.units:
        return lexicon.units[word], i + 1
    return None
