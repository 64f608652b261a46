"""Built-in public holiday calendars (``public_holidays:`` in a calendar of ``routing.yml``)."""

from __future__ import annotations

import datetime
from functools import lru_cache

CALENDARS = ("fr", "fr-alsace-moselle", "gb-eng")


def easter_sunday(year: int) -> datetime.date:
    """Gregorian Easter (the anonymous Gregorian algorithm, "Meeus/Jones/Butcher")."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month = (h + ell - 7 * m + 114) // 31
    day = (h + ell - 7 * m + 114) % 31 + 1
    return datetime.date(year, month, day)


@lru_cache(maxsize=256)
def holidays(calendar: str, year: int) -> dict[datetime.date, str]:
    """The public holidays of ``year`` by date, with their names in the calendar's language."""
    if calendar not in CALENDARS:
        raise ValueError(f"unknown public holiday calendar {calendar!r}; known: {', '.join(CALENDARS)}")
    if calendar == "gb-eng":
        return _england_and_wales(year)
    easter = easter_sunday(year)
    day = datetime.timedelta(days=1)
    dates = {
        datetime.date(year, 1, 1): "Jour de l'an",
        easter + day: "Lundi de Pâques",
        datetime.date(year, 5, 1): "Fête du Travail",
        datetime.date(year, 5, 8): "Victoire 1945",
        easter + 39 * day: "Ascension",
        easter + 50 * day: "Lundi de Pentecôte",
        datetime.date(year, 7, 14): "Fête nationale",
        datetime.date(year, 8, 15): "Assomption",
        datetime.date(year, 11, 1): "Toussaint",
        datetime.date(year, 11, 11): "Armistice 1918",
        datetime.date(year, 12, 25): "Noël",
    }
    if calendar == "fr-alsace-moselle":
        dates[easter - 2 * day] = "Vendredi saint"
        dates[datetime.date(year, 12, 26)] = "Saint Étienne"
    return dates


def holiday_name(calendar: str, date: datetime.date) -> str | None:
    return holidays(calendar, date.year).get(date)


def _england_and_wales(year: int) -> dict[datetime.date, str]:
    """Bank holidays in England and Wales by the standing rules (one-off royal holidays are not included:
    add them to the calendar's ``holidays``)."""
    easter = easter_sunday(year)
    day = datetime.timedelta(days=1)
    dates = {
        _weekday_on_or_after(datetime.date(year, 1, 1)): "New Year's Day",
        easter - 2 * day: "Good Friday",
        easter + day: "Easter Monday",
        _weekday_on_or_after(datetime.date(year, 5, 1), monday=True): "Early May bank holiday",
        _last_monday(year, 5): "Spring bank holiday",
        _last_monday(year, 8): "Summer bank holiday",
    }
    christmas = datetime.date(year, 12, 25)
    if christmas.weekday() == 5:  # Saturday: Monday and Tuesday off
        dates[christmas + 2 * day], dates[christmas + 3 * day] = "Christmas Day (substitute)", "Boxing Day (substitute)"
    elif christmas.weekday() == 6:  # Sunday: Boxing Day on Monday, Christmas substitute on Tuesday
        dates[christmas + day], dates[christmas + 2 * day] = "Boxing Day", "Christmas Day (substitute)"
    else:
        dates[christmas] = "Christmas Day"
        boxing = christmas + day
        dates[boxing if boxing.weekday() < 5 else boxing + 2 * day] = "Boxing Day"
    return dates


def _weekday_on_or_after(date: datetime.date, *, monday: bool = False) -> datetime.date:
    while date.weekday() >= 5 or (monday and date.weekday() != 0):
        date += datetime.timedelta(days=1)
    return date


def _last_monday(year: int, month: int) -> datetime.date:
    last = datetime.date(year + month // 12, month % 12 + 1, 1) - datetime.timedelta(days=1)
    return last - datetime.timedelta(days=last.weekday())
