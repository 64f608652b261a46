"""Entity values from the NLU normalised to canonical forms: E.164 phones, decimal amounts, ISO dates.

The NLU sees transcripts after ``digits_from_speech``, so values arrive as digits mixed with words:
"06 12 34 56 78", "250 euros et 30 centimes", "le 15 mars".
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Mapping

_COUNTRIES: Mapping[str, tuple[str, frozenset[int]]] = {"fr": ("33", frozenset({9})), "en": ("44", frozenset({9, 10}))}
"""Per language: the country calling code and the allowed lengths of the national number without its 0."""

_DEFAULT_CURRENCIES: Mapping[str, str] = {"fr": "EUR", "en": "GBP"}
_CURRENCY_WORDS: Mapping[str, str] = {
    **dict.fromkeys(("€", "eur", "euro", "euros", "centime", "centimes"), "EUR"),
    **dict.fromkeys(("£", "gbp", "pound", "pounds", "livre", "livres", "quid", "penny", "pence", "p"), "GBP"),
    **dict.fromkeys(("$", "usd", "dollar", "dollars"), "USD"),
}
_MINOR_UNIT_WORDS = frozenset({"centime", "centimes", "cent", "cents", "penny", "pence", "p"})
_NUMBER = re.compile(r"(?<![\d.,])(\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+|\d+)(?:[.,](\d{1,2}))?(?!\d)")
"""An amount: thousands grouped by space, dot or comma ("1 200", "1.200", "1,200"), then up to two decimals."""
_LETTERS = re.compile(r"[€£$]|[^\W\d_]+")

_MONTHS: Mapping[str, int] = {
    **{name: index for index, name in enumerate(("janvier", "février", "mars", "avril", "mai", "juin"), 1)},
    **{name: index for index, name in enumerate(("juillet", "août", "septembre", "octobre", "novembre"), 7)},
    **{"fevrier": 2, "aout": 8, "décembre": 12, "decembre": 12},
    **{name: index for index, name in enumerate(("january", "february", "march", "april", "may", "june"), 1)},
    **{name: index for index, name in enumerate(("july", "august", "september", "october", "november"), 7)},
    **{name: index for index, name in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug"), 1)},
    **{"december": 12, "sep": 9, "sept": 9, "oct": 10, "nov": 11, "dec": 12},
}
_WEEKDAYS: Mapping[str, int] = {
    **{name: index for index, name in enumerate(("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi"))},
    **{name: index for index, name in enumerate(("monday", "tuesday", "wednesday", "thursday", "friday"))},
    **{"dimanche": 6, "saturday": 5, "sunday": 6},
}
_RELATIVE_DAYS = (
    ("après-demain", 2),
    ("après demain", 2),
    ("apres-demain", 2),
    ("apres demain", 2),
    ("day after tomorrow", 2),
    ("aujourd'hui", 0),
    ("aujourdhui", 0),
    ("today", 0),
    ("demain", 1),
    ("tomorrow", 1),
)
"""Checked in order, so that "après-demain" is not read as "demain"."""
_ORDINALS: Mapping[str, int] = {
    "premier": 1,
    "première": 1,
    **{
        name: index
        for index, name in enumerate(
            ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth"), 1
        )
    },
    **{
        name: index
        for index, name in enumerate(
            ("eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth", "sixteenth", "seventeenth"), 11
        )
    },
    **{"eighteenth": 18, "nineteenth": 19, "twentieth": 20, "thirtieth": 30},
}
"""Ordinal day words, which ``digits_from_speech`` leaves as words ("the third of june", "le premier mars")."""
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[/.-](\d{1,2})(?:[/.-](\d{4}|\d{2}))?\b")
_DATE_TOKENS = re.compile(r"\d+|[^\W\d_]+(?:'[^\W\d_]+)*")

_Normaliser = Callable[[str, str, datetime.date], str]


def normalize_entities(entities: Mapping[str, str], language: str, today: datetime.date) -> dict[str, str]:
    """Entity values in canonical form, by entity name; see each normaliser for its forms.

    ``phone_number`` -> E.164, ``contract_number`` -> digits, ``amount`` -> "1200.00 EUR", ``date`` -> ISO
    "YYYY-MM-DD" (relative to ``today``); any other entity is stripped and lower-cased. A phone number that cannot
    be normalised keeps its digits only; an amount or a date that cannot be parsed keeps its original value.
    """
    normalisers: Mapping[str, _Normaliser] = {
        "phone_number": _phone_number,
        "contract_number": _contract_number,
        "amount": _amount,
        "date": _date,
    }
    return {name: normalisers.get(name, _plain)(value, language, today) for name, value in entities.items()}


def _plain(value: str, language: str, today: datetime.date) -> str:
    return value.strip().lower()


def _contract_number(value: str, language: str, today: datetime.date) -> str:
    return re.sub(r"\D", "", value) or value.strip()


def _phone_number(value: str, language: str, today: datetime.date) -> str:
    """E.164 from a national ("06 12 34 56 78") or international ("+33 6 ...", "0033 6 ...") number."""
    digits = re.sub(r"\D", "", value)
    if not digits:
        return value.strip()
    international = value.strip().startswith("+") or digits.startswith("00")
    number = digits[2:] if digits.startswith("00") else digits
    country = _COUNTRIES.get(language)
    if country is None or (international and not number.startswith(country[0])):
        return "+" + number if international and 8 <= len(number) <= 15 else digits
    code, lengths = country
    if international:
        national = number[len(code) :]
        if national.startswith("0") and len(national) - 1 in lengths:  # "+33 (0)6 12 ..."
            national = national[1:]
    elif number.startswith("0"):
        national = number[1:]
    else:
        return digits
    if len(national) in lengths and not national.startswith("0"):
        return f"+{code}{national}"
    return digits


def _amount(value: str, language: str, today: datetime.date) -> str:
    """ "1200 euros" -> "1200.00 EUR", "250 euros et 30 centimes" -> "250.30 EUR", "£300" -> "300.00 GBP"."""
    text = value.lower()
    numbers = list(_NUMBER.finditer(text))
    words = _LETTERS.findall(text)
    currency = next((_CURRENCY_WORDS[word] for word in words if word in _CURRENCY_WORDS), None)
    currency = currency or _DEFAULT_CURRENCIES.get(language)
    if not numbers or currency is None:
        return value
    first = numbers[0]
    units = int(re.sub(r"\D", "", first[1]))
    cents = int(first[2].ljust(2, "0")) if first[2] else 0
    following = _LETTERS.findall(text[first.end() :])
    if not first[2] and len(numbers) == 1 and following[:1] and following[0] in _MINOR_UNIT_WORDS:
        units, cents = divmod(units, 100)  # "30 centimes", "50p"
    elif not first[2] and len(numbers) > 1 and _is_minor_part(text, first, numbers[1]):
        cents = int(numbers[1][1])  # "250 euros et 30 centimes", "2 euros 50"
    return f"{units}.{cents:02d} {currency}"


def _is_minor_part(text: str, first: re.Match[str], second: re.Match[str]) -> bool:
    """Whether ``second`` counts the cents of ``first``: below 100, after a currency word between them."""
    between = _LETTERS.findall(text[first.end() : second.start()])
    return not second[2] and int(second[1]) < 100 and any(word in _CURRENCY_WORDS for word in between)


def _date(value: str, language: str, today: datetime.date) -> str:
    """ISO date from "le 15 mars", "15/03/2027", "mardi", "demain", "the 3rd of june"...; else ``value``."""
    text = value.strip().lower().replace("’", "'")
    found = _numeric_date(text, today) or _named_date(text, today) or _relative_date(text, today)
    return found.isoformat() if found else value


def _numeric_date(text: str, today: datetime.date) -> datetime.date | None:
    if iso := _ISO_DATE.search(text):
        return _valid_date(int(iso[1]), int(iso[2]), int(iso[3]))
    numeric = _NUMERIC_DATE.search(text)
    if numeric is None:
        return None
    day, month, year = int(numeric[1]), int(numeric[2]), numeric[3]
    if year is None:
        return _next_occurrence(today, month, day)
    return _valid_date(int(year) + (2000 if len(year) == 2 else 0), month, day)


def _named_date(text: str, today: datetime.date) -> datetime.date | None:
    """A day with a month name ("15 mars 2027", "june 3", "the 3rd of june"), or a day alone ("le 15")."""
    tokens = _DATE_TOKENS.findall(text)
    months = [_MONTHS[token] for token in tokens if token in _MONTHS]
    years = [int(token) for token in tokens if token.isdigit() and len(token) == 4]
    day = _day_of_month(tokens)
    if day is None:
        return None
    if not months:
        return _next_day_of_month(today, day) if not years and len(tokens) <= 2 else None
    if years:
        return _valid_date(years[0], months[0], day)
    return _next_occurrence(today, months[0], day)


def _day_of_month(tokens: list[str]) -> int | None:
    """The first day number: digits ("15", "3" of "3rd") or an ordinal word ("premier", "third", "20 first")."""
    for index, token in enumerate(tokens):
        following = _ORDINALS.get(tokens[index + 1], 0) if index + 1 < len(tokens) else 0
        if token.isdigit() and len(token) <= 2:
            value = int(token)
            return value + following if value in (20, 30) and 0 < following < 10 else value
        if token in _ORDINALS:
            return _ORDINALS[token]
    return None


def _relative_date(text: str, today: datetime.date) -> datetime.date | None:
    """ "demain", "today"...; a weekday is the next one after today ("mardi" on a Tuesday is in a week)."""
    for phrase, offset in _RELATIVE_DAYS:
        if phrase in text:
            return today + datetime.timedelta(days=offset)
    for token in _DATE_TOKENS.findall(text):
        if token in _WEEKDAYS:
            return today + datetime.timedelta(days=(_WEEKDAYS[token] - today.weekday() - 1) % 7 + 1)
    return None


def _next_occurrence(today: datetime.date, month: int, day: int) -> datetime.date | None:
    """The first such day on or after today (a 29 February may be years away); None if the day never exists."""
    for year in range(today.year, today.year + 9):
        found = _valid_date(year, month, day)
        if found is not None and found >= today:
            return found
    return None


def _next_day_of_month(today: datetime.date, day: int) -> datetime.date | None:
    year, month = today.year, today.month
    for _ in range(13):
        found = _valid_date(year, month, day)
        if found is not None and found >= today:
            return found
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return None


def _valid_date(year: int, month: int, day: int) -> datetime.date | None:
    try:
        return datetime.date(year, month, day)
    except ValueError:
        return None
