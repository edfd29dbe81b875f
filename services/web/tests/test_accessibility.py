"""Every page in Chromium: axe-core finds no serious or critical violation, and at 320 px
wide nothing scrolls sideways (tables scroll inside their own box)."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from .browser import axe_violations, describe, horizontal_overflow, sign_in_as, too_wide
from .stack import (
    PEOPLE,
    Stack,
    active_company,
    company_form,
    eventually,
    identity_number,
    post_form,
    sign_in,
)


@pytest.fixture(scope="module")
def pages(stack: Stack) -> dict[str, list[str]]:
    """A company, a pending company, a case in each interesting state: every page has
    something to show."""
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    company_id = active_company(stack, officer, "Axe Återbruk")
    r = post_form(officer, "/companies/new", "/companies/new",
                  company_form("Väntande Kooperativ"))
    pending_id = r.headers["location"].rsplit("/", 1)[1]
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Axel", "family_name": "Axesson",
        "personal_identity_number": identity_number(), "referral_source": "employment_service"})
    pid = r.headers["location"].rsplit("/", 1)[1]
    post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions",
              {"to": "assessment"})
    eventually(lambda: "Axe Återbruk" in cw.get(f"/participants/{pid}/placements/new").text,
               "the company in casework")
    r = post_form(cw, f"/participants/{pid}/placements/new", f"/participants/{pid}/placements",
                  {"company_id": company_id, "kind": "work_training", "start": "2026-11-02"})
    assert r.status_code == 303, r.text[:2000]
    post_form(cw, f"/participants/{pid}", f"/participants/{pid}/notes",
              {"text": "Första mötet gick bra."})
    analyst = sign_in(stack.url, PEOPLE["analyst"])
    r = post_form(analyst, "/learning-examples/new", "/learning-examples/new", {
        "title": "Återbruk som väg in", "municipality_code": "0180",
        "collaboration_types": "work_training", "summary": "Ett samarbete.",
        "contact.name": "Stina", "contact.email": "stina@example.se"})
    assert r.status_code == 303, r.text[:2000]
    example = analyst.get("/learning-examples").text.split('href="/learning-examples/')[2]
    example_id = example.split('"')[0]
    contact_page = analyst.get("/contacts").text
    contact_id = contact_page.split('href="/contacts/')[2].split('"')[0] \
        if contact_page.count('href="/contacts/') > 1 else None
    subs = analyst.get("/subscriptions").text
    sub_id = subs.split('href="/subscriptions/')[2].split('"')[0]
    return {
        "anonymous": ["/", "/dev-login", "/signed-out", "/no-such-page"],
        "case_worker": ["/caseload", "/participants/new", f"/participants/{pid}",
                        f"/participants/{pid}/placements/new", f"/participants/{pid}/close",
                        f"/participants/{pid}/employment", f"/participants/{pid}/edit",
                        f"/participants/{pid}/erase", "/worklists", "/stats", "/companies",
                        f"/companies/{company_id}", "/learning-examples/new",
                        f"/participants/{pid}/plan", "/statements", "/rates"],
        "registry_officer": ["/review", "/companies", f"/companies/{pending_id}",
                             f"/companies/{company_id}", f"/companies/{company_id}/edit",
                             "/companies/new", "/companies/import", "/deliveries",
                             "/learning-examples", "/caseload"],
        "analyst": ["/stats", "/learning-examples", f"/learning-examples/{example_id}",
                    "/contacts", "/contacts/new", *([f"/contacts/{contact_id}"]
                                                     if contact_id else []),
                    "/subscriptions", "/subscriptions/new", f"/subscriptions/{sub_id}",
                    "/templates", "/templates/company_verified", "/deliveries"],
        "auditor": ["/audit", f"/audit/participants/{pid}"],
        "company_rep": ["/companies/new", f"/companies/{company_id}",
                        f"/companies/{company_id}/edit", "/learning-examples/new",
                        "/attendance", "/statements"],
        "company_id": [company_id],
    }


ROLES = ("anonymous", "case_worker", "registry_officer", "analyst", "auditor", "company_rep")


@pytest.mark.parametrize("role", ROLES)
def test_every_page_passes_axe_and_fits_320_px(stack: Stack, browser: Any,
                                                pages: dict[str, list[str]], role: str) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        if role == "company_rep":
            sign_in_as(page, stack.url, {"sub": "rep-axe", "name": "Kim", "role": role,
                                         "company_id": pages["company_id"][0]})
        elif role != "anonymous":
            sign_in_as(page, stack.url, PEOPLE[role])
        problems = []
        for path in pages[role]:
            page.set_viewport_size({"width": 1280, "height": 900})
            page.goto(stack.url + path)
            found = axe_violations(page)
            if found:
                problems.append(f"{path}:\n{describe(found)}")
            page.set_viewport_size({"width": 320, "height": 640})
            page.wait_for_timeout(50)
            overflow = horizontal_overflow(page)
            if overflow > 0:
                problems.append(f"{path}: {overflow} px wider than 320 px: {too_wide(page)}")
        assert not problems, "\n".join(problems)
    finally:
        context.close()


def test_200_percent_zoom_keeps_the_page_usable(stack: Stack, browser: Any) -> None:
    """200 % zoom of a 1280 px window is a 640 px CSS viewport at device scale 2."""
    context = browser.new_context(viewport={"width": 640, "height": 450},
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        sign_in_as(page, stack.url, PEOPLE["case_worker"])
        for path in ("/caseload", "/participants/new"):
            page.goto(stack.url + path)
            assert horizontal_overflow(page) == 0, path
            expect(page.get_by_role("navigation", name="Huvudmeny")).to_be_visible()
    finally:
        context.close()
