"""A company representative in Chromium: registering their company with the five criteria
explained, finding it again under "Mitt företag", and correcting it."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .browser import sign_in_as
from .stack import Stack, org_number

REP = {"sub": "rep-web-1", "name": "Kim Företagare", "role": "company_rep"}


def test_a_rep_registers_and_updates_their_company(stack: Stack, page: Any) -> None:
    sign_in_as(page, stack.url, REP)
    assert page.url.endswith("/my-company")
    page.get_by_role("link", name="Registrera ditt företag").click()
    expect(page.get_by_text(
        "Företaget producerar och säljer varor eller tjänster.")).to_be_visible()
    page.get_by_label("Organisationsnummer").fill(org_number())
    page.get_by_label("Namn", exact=True).fill("Repens Återbruk")
    page.get_by_label("Juridisk form").select_option("ekonomisk_forening")
    page.get_by_label("Kommun", exact=True).select_option("1480")
    page.get_by_label("Återvinning och återbruk").check()
    page.get_by_label("Nystartat").check()
    page.get_by_label("Platser för arbetsträning").fill("6")
    page.get_by_label("Alla som arbetar där").fill("15")
    page.get_by_label("Anställda").fill("6")
    page.get_by_label("Av dem i målgruppen").fill("9")
    page.get_by_label("Företaget driver näringsverksamhet").check()
    page.get_by_label("Integration i arbetslivet är företagets övergripande ändamål").check()
    page.get_by_label("Ägande").check()
    page.get_by_label("Vinsten återinvesteras i huvudsak").check()
    # One criterion left out: the company may still register, but does not count as an ASF.
    page.get_by_role("button", name="Skicka in registreringen").click()
    page.get_by_text("Företaget är registrerat och väntar på granskning").wait_for()
    expect(page.get_by_text("Nej, inte alla kriterier är uppfyllda")).to_be_visible()
    company_url = page.url

    page.get_by_role("link", name="Mitt företag").click()
    assert page.url == company_url
    page.get_by_role("link", name="Ändra företagets uppgifter").click()
    page.get_by_label("Företaget är fristående från offentlig verksamhet").check()
    page.get_by_label("Platser för arbetsträning").fill("7")
    page.get_by_role("button", name="Spara ändringarna").click()
    page.get_by_text("Ändringarna är sparade.").wait_for()
    expect(page.get_by_text("Ja, alla fem kriterierna är uppfyllda")).to_be_visible()
    assert re.search(r"Platser för arbetsträning\s*7", page.locator("main").inner_text())
