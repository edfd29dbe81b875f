"""The English catalog: every text translated, with the same placeholders; Swedish dates
and numbers. No stack needed."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from babel.messages.pofile import read_po

from web import i18n

LOCALE = Path(i18n.__file__).parent / "locale"
_PLACEHOLDER = re.compile(r"%\(\w+\)s|%%")


def test_every_text_has_an_english_translation_with_the_same_placeholders() -> None:
    pot = read_po((LOCALE / "messages.pot").open("rb"))
    po = read_po((LOCALE / "en" / "LC_MESSAGES" / "messages.po").open("rb"), locale="en")
    untranslated, mismatched = [], []
    for m in pot:
        if not m.id:
            continue
        t = po.get(m.id)
        if t is None or not t.string or (isinstance(t.string, tuple) and not all(t.string)):
            untranslated.append(m.id)
            continue
        sv = m.id if isinstance(m.id, str) else m.id[0]
        en = t.string if isinstance(t.string, str) else t.string[0]
        if sorted(_PLACEHOLDER.findall(sv)) != sorted(_PLACEHOLDER.findall(en)):
            mismatched.append((sv, en))
    assert not untranslated, untranslated[:10]
    assert not mismatched, mismatched[:10]


def test_the_catalog_template_is_up_to_date() -> None:
    """Every `_()` text in the code and templates is in messages.pot (run pybabel extract)."""
    from babel.messages.extract import extract_from_dir

    keywords = {"_": None, "N_": None, "gettext": None, "ngettext": (1, 2)}
    found = {m[2] if isinstance(m[2], str) else m[2][0] for m in extract_from_dir(
        str(LOCALE.parent), method_map=[("**.py", "python"), ("**/templates/**.html", "jinja2")],
        options_map={"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}},
        keywords=keywords)}
    pot = {m.id if isinstance(m.id, str) else m.id[0]
           for m in read_po((LOCALE / "messages.pot").open("rb")) if m.id}
    assert found - pot == set(), sorted(found - pot)[:10]


def test_swedish_dates_and_numbers() -> None:
    token = i18n.current_locale.set("sv")
    try:
        assert i18n.format_date(date(2026, 11, 30)) == "30 november 2026"
        assert i18n.format_date("2026-03-01", "short") == "2026-03-01"
        assert i18n.format_number(1234567) == "1\u00a0234\u00a0567"
        assert i18n.format_percent(0.375) == "38\u00a0%"
        assert i18n.format_sek(25000) == "25\u00a0000 kr"
        assert i18n.gettext("Ärenden") == "Ärenden"
    finally:
        i18n.current_locale.reset(token)
    token = i18n.current_locale.set("en")
    try:
        assert i18n.gettext("Ärenden") == "Cases"
        assert i18n.gettext("Efter %(days)s dagar", days=90) == "After 90 days"
        assert i18n.format_date(date(2026, 11, 30)) == "30 November 2026"
    finally:
        i18n.current_locale.reset(token)
