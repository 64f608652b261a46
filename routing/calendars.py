"""Business hours: weekly opening hours, public holidays, the centre's own holidays and exceptional closures.

Everything is wall-clock time in the centre's time zone: ``09:00-18:00`` means nine to six on the local clock,
summer or winter. ``is_open`` is a pure function of a calendar and a local time.
"""

from __future__ import annotations

import datetime
import re
from itertools import pairwise

from pydantic import Field, field_validator, model_validator

from routing import public_holidays
from routing.config_file import Strict

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def parse_range(text: str, *, overnight: bool = False) -> tuple[int, int]:
    """``"09:00-18:30"`` -> minutes since midnight ``(540, 1110)``. ``24:00`` ends a day. With ``overnight``,
    ``"22:00-06:00"`` is allowed and ends the next morning."""
    match = _RANGE.match(text.strip())
    if match is None:
        raise ValueError(f"'{text}' is not a time range; write it as HH:MM-HH:MM, for example 09:00-18:00")
    h1, m1, h2, m2 = (int(g) for g in match.groups())
    if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
        raise ValueError(f"'{text}': hours go from 00:00 to 24:00")
    start, end = h1 * 60 + m1, h2 * 60 + m2
    if start == end or (start > end and not overnight):
        raise ValueError(f"'{text}': the range must end after it starts (use 00:00-24:00 for a whole day)")
    return start, end


def expand_days(spec: str) -> list[str]:
    """``"mon-fri"`` -> ``["mon", ..., "fri"]``; ``"sat"`` -> ``["sat"]``."""
    spec = spec.strip().lower()
    if "-" in spec:
        first, last = (part.strip() for part in spec.split("-", 1))
        if first in DAYS and last in DAYS and DAYS.index(first) <= DAYS.index(last):
            return list(DAYS[DAYS.index(first) : DAYS.index(last) + 1])
    elif spec in DAYS:
        return [spec]
    raise ValueError(f"'{spec}' is not a day or a range of days; use mon, tue, ... sun or a range such as mon-fri")


class Holiday(Strict):
    """A day (``date``) or a run of days (``from``/``to``, inclusive) when the centre is closed."""

    name: str = ""
    date: datetime.date | None = None
    from_: datetime.date | None = Field(default=None, alias="from")
    to: datetime.date | None = None

    @model_validator(mode="after")
    def _one_form(self) -> Holiday:
        if (self.date is None) == (self.from_ is None and self.to is None):
            raise ValueError("a holiday needs either 'date' or both 'from' and 'to'")
        if self.date is None and (self.from_ is None or self.to is None or self.to < self.from_):
            raise ValueError("a holiday with 'from' needs a 'to' on or after it")
        return self

    @property
    def first(self) -> datetime.date:
        return self.date or self.from_  # type: ignore[return-value]

    @property
    def last(self) -> datetime.date:
        return self.date or self.to  # type: ignore[return-value]


class Closure(Strict):
    """An exceptional closure between two local times (a staff meeting, an inventory, an outage)."""

    from_: datetime.datetime = Field(alias="from")
    to: datetime.datetime
    reason: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.from_.tzinfo is not None or self.to.tzinfo is not None:
            raise ValueError("closure times are local wall-clock times: write them without a UTC offset")
        if self.to <= self.from_:
            raise ValueError("a closure must end after it starts")
        return self


class Calendar(Strict):
    """When a queue is open. Without ``weekly`` hours a calendar is open around the clock (except holidays)."""

    weekly: dict[str, list[str]] | None = None
    public_holidays: str | None = None
    holidays: list[Holiday] = Field(default_factory=list)
    closures: list[Closure] = Field(default_factory=list)

    @field_validator("public_holidays")
    @classmethod
    def _public_holidays(cls, value: str | None) -> str | None:
        return None if value is None else public_holidays.check_calendar(value)

    @field_validator("weekly")
    @classmethod
    def _weekly(cls, value: dict[str, list[str]] | None) -> dict[str, list[str]] | None:
        if value is None:
            return None
        by_day: dict[str, list[str]] = {}
        for spec, ranges in value.items():
            for day in expand_days(spec):
                if day in by_day:
                    raise ValueError(f"'{day}' is given twice (in '{spec}'); give each day once")
                by_day[day] = list(ranges)
        for day, ranges in by_day.items():
            parsed = sorted(parse_range(r) for r in ranges)
            for (_, end), (start, _) in pairwise(parsed):
                if start < end:
                    raise ValueError(f"{day}: opening hours {ranges} overlap")
        return by_day

    @model_validator(mode="after")
    def _no_overlaps(self) -> Calendar:
        spans = sorted((h.first, h.last, h.name or str(h.first)) for h in self.holidays)
        for (_, last, name), (first, _, other) in pairwise(spans):
            if first <= last:
                raise ValueError(f"holidays '{name}' and '{other}' overlap; merge them into one")
        if self.public_holidays is not None:
            for holiday in self.holidays:
                day = holiday.first
                while day <= holiday.last:
                    public = public_holidays.holiday_name(self.public_holidays, day)
                    if public is not None:
                        raise ValueError(
                            f"holiday '{holiday.name or holiday.first}' overlaps the public holiday '{public}' "
                            f"({day}) already given by public_holidays: {self.public_holidays}; remove that day"
                        )
                    day += datetime.timedelta(days=1)
        closures = sorted((c.from_, c.to, c.reason or str(c.from_)) for c in self.closures)
        for (_, end, name), (start, _, other) in pairwise(closures):
            if start < end:
                raise ValueError(f"closures '{name}' and '{other}' overlap; merge them into one")
        return self

    def opening_ranges(self, day: str) -> list[tuple[int, int]]:
        if self.weekly is None:
            return [(0, 24 * 60)]
        return [parse_range(r) for r in self.weekly.get(day, [])]


def is_open(calendar: Calendar, local: datetime.datetime) -> tuple[bool, str]:
    """Whether ``calendar`` is open at the local wall-clock time ``local``, and why."""
    date = local.date()
    if calendar.public_holidays is not None:
        name = public_holidays.holiday_name(calendar.public_holidays, date)
        if name is not None:
            return False, f"public holiday {name} ({date})"
    for holiday in calendar.holidays:
        if holiday.first <= date <= holiday.last:
            return False, f"holiday {holiday.name or holiday.first} ({date})"
    wall = local.replace(tzinfo=None)
    for closure in calendar.closures:
        if closure.from_ <= wall < closure.to:
            label = f" {closure.reason}" if closure.reason else ""
            return False, f"closure{label} ({closure.from_:%Y-%m-%d %H:%M} to {closure.to:%Y-%m-%d %H:%M})"
    day = DAYS[local.weekday()]
    minute = local.hour * 60 + local.minute
    for start, end in calendar.opening_ranges(day):
        if start <= minute < end:
            return True, f"open {day} {_hhmm(start)}-{_hhmm(end)}"
    return False, f"outside opening hours ({day} {local:%H:%M})"


def in_window(days: list[str] | None, window: tuple[int, int] | None, local: datetime.datetime) -> bool:
    """A rule's time window: on ``days`` (all when None), between ``window`` minutes (may cross midnight:
    then the part after midnight belongs to the day the window started on)."""
    minute = local.hour * 60 + local.minute
    today = DAYS[local.weekday()]
    yesterday = DAYS[(local.weekday() - 1) % 7]
    if window is None:
        return days is None or today in days
    start, end = window
    if start < end:
        return (days is None or today in days) and start <= minute < end
    if minute >= start:
        return days is None or today in days
    return minute < end and (days is None or yesterday in days)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
