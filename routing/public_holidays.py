"""Built-in public holiday calendars (``public_holidays:`` in a calendar of ``routing.yml``).

The dates and names come from the maintained ``holidays`` package; this module only maps our calendar names to
a country, a subdivision and the language of the names. Each calendar includes weekend holidays as well as the
weekday substitutes (``observed`` days) and one-off holidays (a royal jubilee, a state funeral...) that the
package knows of.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from functools import lru_cache

from holidays import country_holidays


@dataclass(frozen=True)
class _Source:
    country: str  # ISO 3166-1 code
    subdiv: str | None  # the package's subdivision code
    language: str  # the language of the holiday names


_SOURCES = {
    "fr": _Source("FR", None, "fr"),
    "fr-alsace-moselle": _Source("FR", "6AE", "fr"),  # Alsace; Moselle ("57") has the same holidays
    "fr-guadeloupe": _Source("FR", "971", "fr"),
    "fr-martinique": _Source("FR", "972", "fr"),
    "fr-guyane": _Source("FR", "973", "fr"),
    "fr-reunion": _Source("FR", "974", "fr"),
    "fr-mayotte": _Source("FR", "976", "fr"),
    "be": _Source("BE", None, "fr"),
    "lu": _Source("LU", None, "fr"),
    "mc": _Source("MC", None, "fr_MC"),
    # Switzerland: most holidays are cantonal (the federal ones are only four), so a calendar per French-speaking
    # canton; not Fribourg, whose Catholic holidays depend on the commune (the package leaves them out)
    "ch-ge": _Source("CH", "GE", "fr"),
    "ch-vd": _Source("CH", "VD", "fr"),
    "ch-ne": _Source("CH", "NE", "fr"),
    "ch-ju": _Source("CH", "JU", "fr"),
    "ch-vs": _Source("CH", "VS", "fr"),
    "gb-eng": _Source("GB", "ENG", "en_GB"),
    "gb-wls": _Source("GB", "WLS", "en_GB"),
    "gb-sct": _Source("GB", "SCT", "en_GB"),
    "gb-nir": _Source("GB", "NIR", "en_GB"),
}

CALENDARS = tuple(_SOURCES)


def check_calendar(calendar: str) -> str:
    """``calendar`` itself when it is a built-in calendar; otherwise a ``ValueError`` listing the known ones."""
    if calendar not in _SOURCES:
        raise ValueError(f"unknown public holiday calendar {calendar!r}; known: {', '.join(CALENDARS)}")
    return calendar


@lru_cache(maxsize=256)
def holidays(calendar: str, year: int) -> dict[datetime.date, str]:
    """The public holidays of ``year`` by date, with their names in the calendar's language (two holidays on
    the same day are joined by ``; ``)."""
    source = _SOURCES[check_calendar(calendar)]
    days = country_holidays(source.country, subdiv=source.subdiv, years=year, language=source.language)
    return dict(days.items())


def holiday_name(calendar: str, date: datetime.date) -> str | None:
    return holidays(calendar, date.year).get(date)
