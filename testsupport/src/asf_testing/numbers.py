"""Valid Swedish numbers for tests, each unique in the process: personnummer and
samordningsnummer (identity numbers) and organisationsnummer, Luhn-checked as the
services check them."""

from __future__ import annotations

import itertools
import random
from datetime import date, timedelta

from stdnum import luhn

_DAYS = 25_000  # birth dates from 1930 to 1998: never in the future, always adult
_identity = itertools.count(random.randrange(_DAYS * 1000))
_organisation = itertools.count(random.randrange(80_000_000))


def with_check_digit(digits: str) -> str:
    """`digits` followed by their Luhn check digit."""
    return digits + luhn.calc_check_digit(digits)


def identity_number(*, dash: bool = True, century: bool = True,
                    coordination: bool = False) -> str:
    """A valid personnummer (or samordningsnummer: day + 60), by default `YYYYMMDD-NNNN`."""
    n = next(_identity) % (_DAYS * 1000)
    born = date(1930, 1, 1) + timedelta(days=n % _DAYS)
    day = born.day + (60 if coordination else 0)
    ten = with_check_digit(f"{born:%y%m}{day:02d}{n // _DAYS:03d}")
    return (f"{born.year // 100}" if century else "") + ten[:6] + ("-" if dash else "") + ten[6:]


def org_number(*, group: str = "7", dash: bool = True) -> str:
    """A valid organisationsnummer (group digit 7, an economic association, by default;
    2 is a public body, which the registry refuses); the third digit is 2 or more, so it
    is never mistaken for a personnummer."""
    n = next(_organisation) % 80_000_000
    ten = with_check_digit(f"{group}{n % 10}{2 + (n // 10) % 8}{n // 80:06d}")
    return ten[:6] + ("-" if dash else "") + ten[6:]
