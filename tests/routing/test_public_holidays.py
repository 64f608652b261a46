"""Built-in public holiday calendars (from the ``holidays`` package): dates, names, substitute days, and the
calendars they close."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from routing.calendars import Calendar, is_open
from routing.public_holidays import CALENDARS, holiday_name, holidays

LONDON = ZoneInfo("Europe/London")
D = datetime.date.fromisoformat


def _old_french_dates(calendar: str, year: int) -> set[datetime.date]:
    """The dates our own computation gave before the ``holidays`` package (routing/public_holidays.py up to
    8a66411), kept as a reference the package must agree with."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    f = (b + 8) // 25
    g = (b - f + 1) // 3
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    easter = datetime.date(year, (h + ell - 7 * m + 114) // 31, (h + ell - 7 * m + 114) % 31 + 1)
    day = datetime.timedelta(days=1)
    fixed = [(1, 1), (5, 1), (5, 8), (7, 14), (8, 15), (11, 1), (11, 11), (12, 25)]
    dates = {datetime.date(year, month, dom) for month, dom in fixed}
    dates |= {easter + day, easter + 39 * day, easter + 50 * day}
    if calendar == "fr-alsace-moselle":
        dates |= {easter - 2 * day, datetime.date(year, 12, 26)}
    return dates


@pytest.mark.parametrize("calendar", ["fr", "fr-alsace-moselle"])
def test_french_dates_match_our_former_computation_2008_to_2050(calendar: str) -> None:
    differences = {
        year: sorted(set(holidays(calendar, year)) ^ _old_french_dates(calendar, year))
        for year in range(2008, 2051)
        if set(holidays(calendar, year)) != _old_french_dates(calendar, year)
    }
    assert differences == {}


def test_french_holidays_2026_with_french_names() -> None:
    assert holidays("fr", 2026) == {
        D("2026-01-01"): "Jour de l'an",
        D("2026-04-06"): "Lundi de Pâques",
        D("2026-05-01"): "Fête du Travail",
        D("2026-05-08"): "Fête de la Victoire",
        D("2026-05-14"): "Ascension",
        D("2026-05-25"): "Lundi de Pentecôte",
        D("2026-07-14"): "Fête nationale",
        D("2026-08-15"): "Assomption",
        D("2026-11-01"): "Toussaint",
        D("2026-11-11"): "Armistice",
        D("2026-12-25"): "Noël",
    }
    alsace = holidays("fr-alsace-moselle", 2026)
    assert set(alsace) - set(holidays("fr", 2026)) == {D("2026-04-03"), D("2026-12-26")}
    assert alsace[D("2026-04-03")] == "Vendredi saint"
    assert alsace[D("2026-12-26")] == "Saint-Étienne"


@pytest.mark.parametrize(
    ("year", "easter_monday"),
    [(2024, "2024-04-01"), (2025, "2025-04-21"), (2026, "2026-04-06"), (2027, "2027-03-29"), (2038, "2038-04-26")],
)
def test_easter_monday(year: int, easter_monday: str) -> None:
    assert holiday_name("fr", D(easter_monday)) == "Lundi de Pâques"
    assert holiday_name("gb-eng", D(easter_monday)) == "Easter Monday"


def test_two_holidays_on_one_day_are_both_named() -> None:
    name = holiday_name("fr", D("2008-05-01"))
    assert name is not None
    assert sorted(name.split("; ")) == ["Ascension", "Fête du Travail"]


@pytest.mark.parametrize(
    ("calendar", "date", "name"),
    [
        ("fr-guadeloupe", "2026-05-27", "Abolition de l'esclavage"),
        ("fr-guadeloupe", "2026-07-21", "Fête de Victor Schoelcher"),
        ("fr-martinique", "2026-05-22", "Abolition de l'esclavage"),
        ("fr-guyane", "2026-06-10", "Abolition de l'esclavage"),
        ("fr-reunion", "2026-12-20", "Abolition de l'esclavage"),
        ("fr-mayotte", "2026-04-27", "Abolition de l'esclavage"),
        ("be", "2026-07-21", "Fête nationale"),
        ("lu", "2026-06-23", "Fête nationale"),
        ("mc", "2026-11-19", "Le jour de la Fête de S.A.S. le Prince Souverain"),
        ("ch-ge", "2026-09-10", "Jeûne genevois"),
        ("ch-vd", "2026-09-21", "Lundi du Jeûne fédéral"),
        ("ch-ne", "2026-03-01", "Instauration de la République"),
        ("ch-ju", "2026-06-23", "Commémoration du plébiscite"),
        ("ch-vs", "2026-03-19", "Saint-Joseph"),
        ("gb-sct", "2026-11-30", "Saint Andrew's Day"),
        ("gb-nir", "2026-07-13", "Battle of the Boyne (observed)"),
    ],
)
def test_regional_holidays(calendar: str, date: str, name: str) -> None:
    assert holiday_name(calendar, D(date)) == name
    assert holiday_name("gb-eng" if calendar.startswith("gb") else "fr", D(date)) is None


def test_wales_has_the_bank_holidays_of_england() -> None:
    assert all(holidays("gb-wls", year) == holidays("gb-eng", year) for year in range(2008, 2051))


NEW_YEAR = {
    "fr": "Jour de l'an",
    "be": "Nouvel An",
    "lu": "Jour de l'An",
    "mc": "Le jour de l'An",
    "ch": "Nouvel An",
    "gb": "New Year's Day",
}


@pytest.mark.parametrize("calendar", CALENDARS)
def test_every_calendar_names_its_holidays_in_its_language(calendar: str) -> None:
    days = holidays(calendar, 2026)
    assert days[D("2026-01-01")] == NEW_YEAR[calendar.split("-")[0]]
    assert D("2026-12-25") in days
    assert all(date.year == 2026 for date in days)


def test_england_2027_christmas_on_a_weekend_and_its_substitutes() -> None:
    days = holidays("gb-eng", 2027)
    assert {date: name for date, name in days.items() if date.month == 12} == {
        D("2027-12-25"): "Christmas Day",
        D("2027-12-26"): "Boxing Day",
        D("2027-12-27"): "Christmas Day (observed)",
        D("2027-12-28"): "Boxing Day (observed)",
    }
    assert len(days) == 10


def test_england_2022_new_year_on_a_saturday_and_its_substitute() -> None:
    days = holidays("gb-eng", 2022)
    assert days[D("2022-01-01")] == "New Year's Day"
    assert days[D("2022-01-03")] == "New Year's Day (observed)"
    assert D("2022-01-02") not in days
    assert days[D("2022-09-19")] == "State Funeral of Queen Elizabeth II"  # one-off holidays are included


MON_SAT = Calendar.model_validate(
    {"weekly": {"mon-fri": ["09:00-18:00"], "sat": ["09:00-12:00"]}, "public_holidays": "gb-eng"}
)


@pytest.mark.parametrize(
    ("moment", "expected", "why"),
    [
        ("2027-12-24T10:00", True, "open fri 09:00-18:00"),
        ("2027-12-25T10:00", False, "public holiday Christmas Day (2027-12-25)"),
        ("2027-12-27T10:00", False, "public holiday Christmas Day (observed) (2027-12-27)"),
        ("2027-12-28T10:00", False, "public holiday Boxing Day (observed) (2027-12-28)"),
        ("2027-12-29T10:00", True, "open wed 09:00-18:00"),
        ("2022-01-01T10:00", False, "public holiday New Year's Day (2022-01-01)"),
        ("2022-01-03T10:00", False, "public holiday New Year's Day (observed) (2022-01-03)"),
        ("2022-01-04T10:00", True, "open tue 09:00-18:00"),
    ],
)
def test_a_monday_to_saturday_centre_is_closed_on_english_holidays_and_substitutes(
    moment: str, expected: bool, why: str
) -> None:
    assert is_open(MON_SAT, datetime.datetime.fromisoformat(moment).replace(tzinfo=LONDON)) == (expected, why)


KNOWN = (
    "known: fr, fr-alsace-moselle, fr-guadeloupe, fr-martinique, fr-guyane, fr-reunion, fr-mayotte, be, lu, mc, "
    "ch-ge, ch-vd, ch-ne, ch-ju, ch-vs, gb-eng, gb-wls, gb-sct, gb-nir"
)


def test_an_unknown_calendar_is_a_clear_error() -> None:
    message = f"unknown public holiday calendar 'fr-paris'; {KNOWN}"
    with pytest.raises(ValueError) as raised:
        holidays("fr-paris", 2026)
    assert str(raised.value) == message
    with pytest.raises(ValueError, match="public_holidays") as invalid:
        Calendar.model_validate({"public_holidays": "fr-paris"})
    assert message in str(invalid.value)


def test_a_holiday_on_a_one_off_public_holiday_is_refused() -> None:
    with pytest.raises(ValueError, match="overlaps the public holiday 'Coronation of Charles III' \\(2023-05-08\\)"):
        Calendar.model_validate(
            {"public_holidays": "gb-eng", "holidays": [{"name": "Coronation", "date": "2023-05-08"}]}
        )
