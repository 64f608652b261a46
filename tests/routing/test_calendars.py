"""Business hours: edges, public holidays (their dates: test_public_holidays.py), the centre's holidays and
closures, time zones and DST changes."""

from __future__ import annotations

import datetime
from zoneinfo import ZoneInfo

import pytest

from routing.calendars import Calendar, in_window, is_open, parse_range

PARIS = ZoneInfo("Europe/Paris")
UTC = datetime.UTC

OFFICE = Calendar.model_validate(
    {
        "weekly": {"mon-fri": ["09:00-12:30", "13:30-18:00"], "sat": ["09:00-12:00"]},
        "public_holidays": "fr",
        "holidays": [{"name": "Pont", "date": "2027-05-07"}, {"name": "Été", "from": "2027-08-09", "to": "2027-08-13"}],
        "closures": [{"from": "2026-12-24T16:00", "to": "2026-12-24T18:00", "reason": "Veille de Noël"}],
    }
)
NIGHT_SHIFT = Calendar.model_validate({"weekly": {"mon-sun": ["00:00-06:00", "22:00-24:00"]}})


def paris(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=PARIS)


def utc(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text).replace(tzinfo=UTC)


# (id, calendar, moment (any zone; converted to Paris time), open?, fragment of the reason)
HOURS = [
    ("before_opening", OFFICE, paris("2026-12-01T08:59"), False, "outside opening hours (tue 08:59)"),
    ("at_opening", OFFICE, paris("2026-12-01T09:00"), True, "open tue 09:00-12:30"),
    ("lunch_start_is_closed", OFFICE, paris("2026-12-01T12:30"), False, "outside"),
    ("last_minute_of_lunch", OFFICE, paris("2026-12-01T13:29"), False, "outside"),
    ("after_lunch", OFFICE, paris("2026-12-01T13:30"), True, "open tue 13:30-18:00"),
    ("last_minute", OFFICE, paris("2026-12-01T17:59"), True, "open"),
    ("at_closing", OFFICE, paris("2026-12-01T18:00"), False, "outside"),
    ("saturday_morning", OFFICE, paris("2026-12-05T11:59"), True, "open sat"),
    ("saturday_noon", OFFICE, paris("2026-12-05T12:00"), False, "outside"),
    ("sunday", OFFICE, paris("2026-12-06T10:00"), False, "sun 10:00"),
    ("christmas", OFFICE, paris("2026-12-25T10:00"), False, "public holiday Noël (2026-12-25)"),
    ("easter_monday_2027", OFFICE, paris("2027-03-29T10:00"), False, "Lundi de Pâques"),
    ("ascension_2027", OFFICE, paris("2027-05-06T10:00"), False, "Ascension"),
    ("bridge_day", OFFICE, paris("2027-05-07T10:00"), False, "holiday Pont"),
    ("whit_monday_2027", OFFICE, paris("2027-05-17T10:00"), False, "Lundi de Pentecôte"),
    ("summer_first_day", OFFICE, paris("2027-08-09T10:00"), False, "holiday Été"),
    ("summer_last_day", OFFICE, paris("2027-08-13T17:00"), False, "holiday Été"),
    ("after_summer_break", OFFICE, paris("2027-08-16T10:00"), True, "open mon"),
    ("before_closure", OFFICE, paris("2026-12-24T15:59"), True, "open thu"),
    ("closure_start", OFFICE, paris("2026-12-24T16:00"), False, "closure Veille de Noël"),
    ("closure_last_minute", OFFICE, paris("2026-12-24T17:59"), False, "closure"),
    # time zones: the calendar is Paris wall-clock time, whatever zone the moment is given in
    ("winter_utc_0759_is_0859", OFFICE, utc("2026-12-01T07:59"), False, "08:59"),
    ("winter_utc_0800_is_0900", OFFICE, utc("2026-12-01T08:00"), True, "open"),
    ("summer_utc_0659_is_0859", OFFICE, utc("2026-07-01T06:59"), False, "08:59"),
    ("summer_utc_0700_is_0900", OFFICE, utc("2026-07-01T07:00"), True, "open"),
    ("summer_utc_1559_is_1759", OFFICE, utc("2026-07-01T15:59"), True, "open"),
    ("summer_utc_1600_is_1800", OFFICE, utc("2026-07-01T16:00"), False, "18:00"),
    (
        "montreal_moment",
        OFFICE,
        datetime.datetime(2026, 12, 1, 3, 0, tzinfo=ZoneInfo("America/Montreal")),
        True,
        "09:00",
    ),
    # DST change days (2027-03-28: 02:00 -> 03:00; 2026-10-25: 03:00 -> 02:00), on a calendar open at night
    ("spring_forward_before", NIGHT_SHIFT, utc("2027-03-28T00:59"), True, "open sun 00:00-06:00"),
    ("spring_forward_after", NIGHT_SHIFT, utc("2027-03-28T01:00"), True, "open sun 00:00-06:00"),
    ("spring_forward_day_0559_local", NIGHT_SHIFT, utc("2027-03-28T03:59"), True, "open"),
    ("spring_forward_day_0600_local", NIGHT_SHIFT, utc("2027-03-28T04:00"), False, "sun 06:00"),
    ("fall_back_first_0230", NIGHT_SHIFT, utc("2026-10-25T00:30"), True, "open"),
    ("fall_back_second_0230", NIGHT_SHIFT, utc("2026-10-25T01:30"), True, "open"),
    ("fall_back_day_0600_local", NIGHT_SHIFT, utc("2026-10-25T05:00"), False, "sun 06:00"),
    ("night_before_midnight", NIGHT_SHIFT, paris("2026-12-01T23:59"), True, "22:00-24:00"),
    ("night_evening", NIGHT_SHIFT, paris("2026-12-01T21:59"), False, "outside"),
]


@pytest.mark.parametrize(("calendar", "moment", "expected", "why"), [h[1:] for h in HOURS], ids=[h[0] for h in HOURS])
def test_is_open(calendar: Calendar, moment: datetime.datetime, expected: bool, why: str) -> None:
    is_open_now, reason = is_open(calendar, moment.astimezone(PARIS))
    assert is_open_now is expected, reason
    assert why in reason


def test_a_calendar_without_weekly_hours_is_always_open_but_for_holidays() -> None:
    always = Calendar.model_validate({"public_holidays": "fr"})
    assert is_open(always, paris("2026-12-06T03:00"))[0]
    assert not is_open(always, paris("2026-07-14T03:00"))[0]


WINDOWS = [
    ("weekday_window_in", ["mon", "tue"], "08:00-20:00", paris("2026-12-01T19:59"), True),
    ("weekday_window_end", ["mon", "tue"], "08:00-20:00", paris("2026-12-01T20:00"), False),
    ("other_day", ["mon"], "08:00-20:00", paris("2026-12-01T10:00"), False),
    ("overnight_evening", ["fri"], "22:00-06:00", paris("2026-12-04T23:00"), True),
    ("overnight_belongs_to_start_day", ["fri"], "22:00-06:00", paris("2026-12-05T05:59"), True),
    ("overnight_not_other_nights", ["fri"], "22:00-06:00", paris("2026-12-04T05:00"), False),
    ("overnight_end", ["fri"], "22:00-06:00", paris("2026-12-05T06:00"), False),
    ("days_only", ["sat", "sun"], None, paris("2026-12-06T13:00"), True),
    ("any_day", None, "12:00-14:00", paris("2026-12-06T13:00"), True),
]


@pytest.mark.parametrize(
    ("days", "between", "moment", "expected"), [w[1:] for w in WINDOWS], ids=[w[0] for w in WINDOWS]
)
def test_rule_time_windows(days: list[str] | None, between: str | None, moment: datetime.datetime, expected: bool):
    window = parse_range(between, overnight=True) if between else None
    assert in_window(days, window, moment) is expected


@pytest.mark.parametrize(
    ("definition", "fragment"),
    [
        ({"weekly": {"mon": ["18:00-09:00"]}}, "must end after it starts"),
        ({"weekly": {"mon": ["9h-18h"]}}, "HH:MM-HH:MM"),
        ({"weekly": {"mon": ["09:00-25:00"]}}, "00:00 to 24:00"),
        ({"weekly": {"mon-fri": ["09:00-18:00"], "fri": ["09:00-12:00"]}}, "'fri' is given twice"),
        ({"weekly": {"mon": ["09:00-13:00", "12:00-18:00"]}}, "overlap"),
        ({"weekly": {"lun": ["09:00-18:00"]}}, "not a day"),
        ({"holidays": [{"date": "2027-05-07"}, {"from": "2027-05-06", "to": "2027-05-10"}]}, "overlap"),
        ({"public_holidays": "fr", "holidays": [{"name": "Noël", "date": "2026-12-25"}]}, "public holiday 'Noël'"),
        ({"holidays": [{"from": "2027-05-10", "to": "2027-05-06"}]}, "'to' on or after"),
        ({"closures": [{"from": "2026-12-24T16:00", "to": "2026-12-24T15:00"}]}, "end after it starts"),
        (
            {
                "closures": [
                    {"from": "2026-12-24T16:00", "to": "2026-12-24T18:00"},
                    {"from": "2026-12-24T17:00", "to": "2026-12-24T19:00"},
                ]
            },
            "overlap",
        ),
        ({"public_holidays": "de"}, "public_holidays"),
    ],
)
def test_calendar_errors(definition: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Calendar.model_validate(definition)
