"""A case worker's whole journey in Chromium: register → assessment → placement → employed
→ follow-up recorded; once with the mouse and once with the keyboard alone."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .browser import choose_radio, sign_in_as, tab_to
from .stack import PEOPLE, Stack, active_company, identity_number, sign_in


def _company(stack: Stack, name: str) -> str:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    return active_company(stack, officer, name)


def _wait_for_company_in_picker(page: Any, name: str) -> None:
    """casework learns of the verification through the broker; reload until it has."""
    for _ in range(60):
        if page.get_by_text(name).count():
            return
        page.wait_for_timeout(500)
        page.reload()
    raise AssertionError(f"{name} never showed up in the placement picker")


def test_case_worker_journey_with_the_mouse(stack: Stack, page: Any) -> None:
    company = "Musklickarnas Kooperativ"
    _company(stack, company)
    sign_in_as(page, stack.url, PEOPLE["case_worker"])
    assert page.url.endswith("/caseload")

    page.get_by_role("link", name="Ny deltagare", exact=True).click()
    page.get_by_label("Förnamn").fill("Astrid")
    page.get_by_label("Efternamn").fill("Musson")
    page.get_by_label("Personnummer eller samordningsnummer").fill(identity_number())
    page.get_by_label("Socialtjänsten").check()
    page.get_by_role("button", name="Registrera deltagaren").click()
    page.get_by_role("heading", name="Astrid Musson").wait_for()
    expect(page.get_by_text("Deltagaren är registrerad.")).to_be_visible()

    # Exactly the next allowed steps are offered.
    buttons = page.locator("#next-title ~ .actions button").all_inner_texts()
    assert buttons == ["Starta kartläggning", "Avsluta ärendet"]
    page.get_by_role("button", name="Starta kartläggning").click()
    page.get_by_text("Ärendet är nu i steget Kartläggning.").wait_for()
    buttons = page.locator("#next-title ~ .actions button").all_inner_texts()
    assert buttons == ["Starta placering", "Avsluta ärendet"]

    page.get_by_role("button", name="Starta placering").click()
    _wait_for_company_in_picker(page, company)
    page.get_by_label(re.compile(f"^{company}")).check()
    expect(page.get_by_text(re.compile(f"{company}.*5 av 5 platser lediga"))).to_be_visible()
    page.get_by_label("Timmar per vecka").fill("20")
    page.get_by_role("button", name="Starta placeringen").click()
    page.get_by_text("Placeringen är startad").wait_for()
    assert page.locator(".lead .tag").inner_text() == "Arbetsträning"

    page.get_by_role("button", name="Registrera anställning").click()
    page.get_by_label("Lönebidrag").check()
    page.get_by_label("Annan arbetsgivare").fill("Kommunens park")
    page.get_by_role("button", name="Registrera anställningen").click()
    page.get_by_text("Ärendet är nu i steget Anställd.").wait_for()

    page.get_by_role("group", name="Har personen kvar arbetet?").get_by_label("Ja").check()
    page.get_by_role("button", name="Registrera uppföljning").click()
    page.get_by_text("Uppföljningen är registrerad.").wait_for()
    assert page.locator("#follow-ups").get_by_text("har kvar arbetet").count() >= 1
    assert page.get_by_text("Uppföljning registrerad").count() >= 1


def test_case_worker_journey_with_the_keyboard(stack: Stack, page: Any) -> None:
    company = "Tangentbordets Trädgård"
    _company(stack, company)
    sign_in_as(page, stack.url, PEOPLE["case_worker"])

    kb = page.keyboard
    tab_to(page, page.get_by_role("link", name="Ny deltagare", exact=True))
    kb.press("Enter")
    page.get_by_label("Förnamn").wait_for()
    tab_to(page, page.get_by_label("Förnamn"))
    kb.type("Bertil")
    kb.press("Tab")
    kb.type("Tangentsson")
    kb.press("Tab")
    kb.type(identity_number())
    choose_radio(page, page.get_by_label("Socialtjänsten"))
    tab_to(page, page.get_by_role("button", name="Registrera deltagaren"))
    kb.press("Enter")
    page.get_by_role("heading", name="Bertil Tangentsson").wait_for()

    tab_to(page, page.get_by_role("button", name="Starta kartläggning"))
    kb.press("Enter")
    page.get_by_text("Ärendet är nu i steget Kartläggning.").wait_for()

    tab_to(page, page.get_by_role("button", name="Starta placering"))
    kb.press("Enter")
    _wait_for_company_in_picker(page, company)
    choose_radio(page, page.get_by_label(re.compile(f"^{company}")))
    assert page.get_by_label(re.compile(f"^{company}")).is_checked()
    tab_to(page, page.get_by_role("button", name="Starta placeringen"))
    kb.press("Enter")
    page.get_by_text("Placeringen är startad").wait_for()

    tab_to(page, page.get_by_role("button", name="Registrera anställning"))
    kb.press("Enter")
    choose_radio(page, page.get_by_label("Nystartsjobb"))
    tab_to(page, page.get_by_label("Annan arbetsgivare"))
    kb.type("Bageriet")
    tab_to(page, page.get_by_role("button", name="Registrera anställningen"))
    kb.press("Enter")
    page.get_by_text("Ärendet är nu i steget Anställd.").wait_for()

    group = page.get_by_role("group", name="Har personen kvar arbetet?")
    choose_radio(page, group.get_by_label("Nej"))
    tab_to(page, page.get_by_role("button", name="Registrera uppföljning"))
    kb.press("Enter")
    page.get_by_text("Uppföljningen är registrerad.").wait_for()
    assert page.locator("#follow-ups").get_by_text("har inte kvar arbetet").count() >= 1
