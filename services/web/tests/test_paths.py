"""Paths through the app in Chromium: a task with JavaScript off, a link from an email
followed through sign-in and back, and the caseload refreshing itself from the stream."""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .browser import sign_in_as
from .stack import PEOPLE, Stack, company_form, eventually, identity_number, post_form, sign_in


def test_registering_a_participant_with_javascript_off(stack: Stack, browser: Any) -> None:
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    try:
        sign_in_as(page, stack.url, PEOPLE["case_worker"])
        page.goto(stack.url + "/participants/new")
        page.get_by_label("Förnamn").fill("Utan")
        page.get_by_label("Efternamn").fill("Skript")
        page.get_by_label("Personnummer eller samordningsnummer").fill("19900101-0018")
        page.get_by_role("button", name="Registrera deltagaren").click()
        # The error summary at the top links to each field; the messages sit beside them.
        summary = page.locator(".error-summary")
        expect(summary).to_be_visible()
        links = summary.get_by_role("link").all_inner_texts()
        assert any(t.startswith("Personnummer: Kontrollsiffran stämmer inte") for t in links)
        assert any(t.startswith("Anvisad av") for t in links)
        assert page.locator("#f-personal_identity_number-error").inner_text().endswith(
            "Kontrollsiffran stämmer inte")
        assert page.get_by_label("Förnamn").input_value() == "Utan"  # what was typed stays
        page.get_by_label("Personnummer eller samordningsnummer").fill(identity_number())
        page.get_by_label("Egen anmälan").check()
        page.get_by_role("button", name="Registrera deltagaren").click()
        page.get_by_role("heading", name="Utan Skript").wait_for()
        page.get_by_role("button", name="Starta kartläggning").click()
        expect(page.get_by_text("Ärendet är nu i steget Kartläggning.")).to_be_visible()
    finally:
        context.close()


def test_an_emails_link_opens_the_page_after_sign_in(stack: Stack, page: Any) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    form = company_form("Länkens Kooperativ")
    form["contacts[0].email"] = "lank@example.se"
    r = post_form(officer, "/companies/new", "/companies/new", form)
    company_id = r.headers["location"].rsplit("/", 1)[1]
    post_form(officer, f"/companies/{company_id}", f"/companies/{company_id}/verification",
              {"decision": "verified", "level": "verified"})

    def link_in_mail() -> str | None:
        for msg in stack.smtp.to("lank@example.se"):
            body = msg.get_body(preferencelist=("plain",))
            text = body.get_content() if body is not None else ""
            m = re.search(rf"{re.escape(stack.url)}/companies/{company_id}", text)
            if m:
                return m.group(0)
        return None

    link = eventually(link_in_mail, "the email about the verification, with its link")
    page.goto(link)
    assert "/dev-login" in page.url  # not signed in: sign in first …
    sign_in_form = page.locator("form", has=page.locator('input[name="sub"][type="text"]'))
    sign_in_form.get_by_label("Användar-id (sub)").fill("officer-link")
    sign_in_form.get_by_label("Roll").select_option("registry_officer")
    sign_in_form.get_by_role("button", name="Logga in").click()
    page.wait_for_url(re.compile(f"/companies/{company_id}$"))  # … then back to the page
    expect(page.get_by_role("heading", name="Länkens Kooperativ")).to_be_visible()


def test_the_caseload_updates_itself_from_the_stream(stack: Stack, page: Any) -> None:
    sign_in_as(page, stack.url, PEOPLE["case_worker"], next_url="/caseload?stage=referred")
    page.wait_for_function("() => window.htmx !== undefined")
    page.wait_for_timeout(1000)  # let EventSource connect through the relay
    page.evaluate("() => { window.stillTheSamePage = true; }")
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Live", "family_name": "Strömsson",
        "personal_identity_number": identity_number(), "referral_source": "self"})
    pid = r.headers["location"].rsplit("/", 1)[1]
    # No reload: the new case shows up because the stream said something changed.
    page.locator(f"#case-{pid}").wait_for(timeout=20_000)
    assert page.evaluate("() => window.stillTheSamePage === true")


def test_filtering_the_caseload_updates_the_list_in_place(stack: Stack, page: Any) -> None:
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Filter", "family_name": "Fransson",
        "personal_identity_number": identity_number(), "referral_source": "self"})
    pid = r.headers["location"].rsplit("/", 1)[1]
    post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions",
              {"to": "assessment"})
    sign_in_as(page, stack.url, PEOPLE["case_worker"], next_url="/caseload")
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("() => { window.stillTheSamePage = true; }")
    page.get_by_label("Steg").select_option("assessment")
    page.get_by_role("button", name="Visa ärenden").click()
    page.wait_for_url(re.compile(r"stage=assessment"))
    page.get_by_text("Ärenden i steget Kartläggning").wait_for()
    expect(page.locator(f"#case-{pid}")).to_be_visible()
    assert page.evaluate("() => window.stillTheSamePage === true")  # swapped, not reloaded
