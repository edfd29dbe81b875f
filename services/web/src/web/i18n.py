"""Swedish first, English second: gettext catalogs (Babel) and Swedish dates and numbers.

The texts are written in Swedish in the templates and code (`_("...")`); the English
catalog `locale/en/LC_MESSAGES/messages.po` translates them. It is compiled in memory at
start, so there is no build step. How to add texts: services/web/README.md.
"""

from __future__ import annotations

import io
from contextvars import ContextVar
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from babel import dates, numbers
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import NullTranslations, Translations

LOCALES = ("sv", "en")
DEFAULT_LOCALE = "sv"
TIMEZONE = ZoneInfo("Europe/Stockholm")
_DIR = Path(__file__).parent / "locale"

current_locale: ContextVar[str] = ContextVar("current_locale", default=DEFAULT_LOCALE)


def _load(locale: str) -> NullTranslations:
    po = _DIR / locale / "LC_MESSAGES" / "messages.po"
    if not po.exists():
        return NullTranslations()
    with po.open("rb") as f:
        catalog = read_po(f, locale=locale)
    buf = io.BytesIO()
    write_mo(buf, catalog)
    buf.seek(0)
    return Translations(buf)


_TRANSLATIONS: dict[str, NullTranslations] = {}


def translations(locale: str) -> NullTranslations:
    if locale not in _TRANSLATIONS:
        _TRANSLATIONS[locale] = NullTranslations() if locale == "sv" else _load(locale)
    return _TRANSLATIONS[locale]


def gettext(message: str, **variables: Any) -> str:
    text = translations(current_locale.get()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, n: int, **variables: Any) -> str:
    text = translations(current_locale.get()).ngettext(singular, plural, n)
    return text % {"num": n, **variables}


_ = gettext


def N_(message: str) -> str:
    """Marks a text for extraction; it is translated where it is shown."""
    return message


def pick_locale(session_choice: str | None, accept_language: str | None) -> str:
    """The person's choice in the session wins; otherwise Swedish (the app's language)."""
    if session_choice in LOCALES:
        return session_choice
    return DEFAULT_LOCALE


# --- formatting the Swedish way ---------------------------------------------------------


def _as_date(value: Any) -> date | None:
    if value in (None, ""):
        return None
    if isinstance(value, datetime):
        return value.astimezone(TIMEZONE).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = str(value)
    try:
        return datetime.fromisoformat(text).date() if "T" in text else date.fromisoformat(text)
    except ValueError:
        return None


def format_date(value: Any, style: str = "long") -> str:
    """30 november 2026 (long) or 2026-11-30 (short, as Swedes write dates)."""
    d = _as_date(value)
    if d is None:
        return ""
    if style == "short":
        return d.isoformat()
    return dates.format_date(d, "d MMMM y", locale=current_locale.get())


def format_datetime(value: Any) -> str:
    if value in (None, ""):
        return ""
    dt = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if dt.tzinfo is not None:
        dt = dt.astimezone(TIMEZONE)
    return dates.format_datetime(dt, "d MMMM y HH:mm", locale=current_locale.get())


def format_number(value: Any, digits: int = 0) -> str:
    if value is None:
        return ""
    if digits:
        return numbers.format_decimal(Decimal(str(value)), format=f"#,##0.{'0' * digits}",
                                      locale=current_locale.get())
    return numbers.format_decimal(value, locale=current_locale.get())


def format_percent(value: Any) -> str:
    if value is None:
        return ""
    return numbers.format_percent(value, format="#,##0\u00a0%", locale=current_locale.get())


def format_sek(value: Any) -> str:
    if value is None:
        return ""
    return f"{format_number(value)} kr"
