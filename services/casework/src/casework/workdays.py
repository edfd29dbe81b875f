"""Calendar months and Swedish working days. Pure, no I/O.

A working day is Monday to Friday and not a Swedish public holiday (allmän helgdag,
lagen (1989:253) om allmänna helgdagar) nor one of the three eves that are days off in
practice and in most collective agreements (midsommarafton, julafton, nyårsafton).
Casework uses it for two things: the first working day of a month is when the previous
month's attendance statements are issued, and planned hours fall on working days only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

SWEDEN = ZoneInfo("Europe/Stockholm")

_MONTH = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


@dataclass(frozen=True, order=True)
class Month:
    """A calendar month, written `YYYY-MM`."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        m = _MONTH.match(text)
        if m is None:
            raise ValueError("must be a month written YYYY-MM")
        return cls(int(m.group(1)), int(m.group(2)))

    @classmethod
    def of(cls, day: date) -> Month:
        return cls(day.year, day.month)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def first(self) -> date:
        return date(self.year, self.month, 1)

    @property
    def last(self) -> date:
        return self.next().first - timedelta(days=1)

    def next(self) -> Month:
        return Month(self.year + self.month // 12, self.month % 12 + 1)

    def previous(self) -> Month:
        return Month(self.year - (self.month == 1), (self.month - 2) % 12 + 1)

    def days(self) -> list[date]:
        return [self.first + timedelta(days=i) for i in range(self.last.day)]


def swedish_date(at: datetime) -> date:
    """The date in Sweden at an instant: attendance days, review dates and months are
    Swedish dates (a report at 00:30 in Stockholm is for that day, not UTC's)."""
    return at.astimezone(SWEDEN).date()


def easter_sunday(year: int) -> date:
    """Easter Sunday of the Gregorian calendar (the anonymous algorithm, Meeus/Jones/Butcher)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = b // 4, b % 4
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = c // 4, c % 4
    l_ = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 19 * l_) // 433
    month = (h + l_ - 7 * m + 90) // 25
    day = (h + l_ - 7 * m + 33 * month + 19) % 32
    return date(year, month, day)


@lru_cache(maxsize=64)
def days_off(year: int) -> frozenset[date]:
    """The public holidays and de facto days off of a year that can fall on a weekday.

    The Sunday holidays (påskdagen, pingstdagen) and the Saturday ones (midsommardagen,
    alla helgons dag) are weekend days anyway.
    """
    easter = easter_sunday(year)
    midsummer_eve = next(date(year, 6, d) for d in range(19, 26)
                         if date(year, 6, d).weekday() == 4)
    return frozenset({
        date(year, 1, 1),  # nyårsdagen
        date(year, 1, 6),  # trettondedag jul
        easter - timedelta(days=2),  # långfredagen
        easter + timedelta(days=1),  # annandag påsk
        date(year, 5, 1),  # första maj
        easter + timedelta(days=39),  # Kristi himmelsfärdsdag
        date(year, 6, 6),  # Sveriges nationaldag
        midsummer_eve,  # midsommarafton (de facto)
        date(year, 12, 24),  # julafton (de facto)
        date(year, 12, 25),  # juldagen
        date(year, 12, 26),  # annandag jul
        date(year, 12, 31),  # nyårsafton (de facto)
    })


def is_working_day(day: date) -> bool:
    return day.weekday() < 5 and day not in days_off(day.year)


def first_working_day(month: Month) -> date:
    """The day the previous month's statements are issued (e.g. 2026-01-02, after nyårsdagen)."""
    day = month.first
    while not is_working_day(day):
        day += timedelta(days=1)
    return day
