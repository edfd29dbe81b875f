"""Every page renders for the role it is for, over HTTP (no browser): the fast layer."""

from __future__ import annotations

import httpx

from .stack import PEOPLE, Stack, sign_in


def test_dev_login_lists_demo_people_and_signs_in(stack: Stack) -> None:
    anonymous = httpx.Client(base_url=stack.url)
    page = anonymous.get("/dev-login")
    assert page.status_code == 200
    assert "Maja Handläggare" in page.text and "Rut Registrator" in page.text
    client = sign_in(stack.url, PEOPLE["case_worker"])
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/caseload"
    r = client.get("/caseload")
    assert r.status_code == 200, r.text[:3000]
    assert r.headers["cache-control"] == "no-store"


def test_every_page_renders_for_its_role(stack: Stack) -> None:
    from .stack import active_company, eventually, identity_number, post_form

    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    company_id = active_company(stack, officer, "Sidornas Kooperativ")
    for path in ("/review", "/companies", f"/companies/{company_id}", "/companies/import",
                 "/companies/new", "/deliveries", "/learning-examples"):
        r = officer.get(path)
        assert r.status_code == 200, (path, r.text[:3000])

    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Sida", "family_name": "Testsson",
        "personal_identity_number": identity_number(), "referral_source": "self"})
    assert r.status_code == 303, r.text[:3000]
    pid = r.headers["location"].rsplit("/", 1)[1]
    r = post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions",
                  {"to": "assessment"})
    assert r.status_code == 303, r.text[:3000]

    def placed() -> bool:
        page = cw.get(f"/participants/{pid}/placements/new")
        assert page.status_code == 200, page.text[:3000]
        return "Sidornas Kooperativ" in page.text

    eventually(placed, "the verified company in the placement picker")
    for path in ("/caseload", "/participants/new", f"/participants/{pid}",
                 f"/participants/{pid}/close", f"/participants/{pid}/employment",
                 f"/participants/{pid}/edit", "/worklists", "/stats", "/companies",
                 f"/companies/{company_id}", "/learning-examples/new"):
        r = cw.get(path)
        assert r.status_code == 200, (path, r.text[:3000])

    analyst = sign_in(stack.url, PEOPLE["analyst"])
    for path in ("/stats", "/learning-examples", "/contacts", "/contacts/new",
                 "/subscriptions", "/subscriptions/new", "/templates",
                 "/templates/company_verified", "/deliveries"):
        r = analyst.get(path)
        assert r.status_code == 200, (path, r.text[:3000])

    auditor = sign_in(stack.url, PEOPLE["auditor"])
    r = auditor.get("/audit")
    assert r.status_code == 200
    r = auditor.get(f"/audit/participants/{pid}")
    assert r.status_code == 200, r.text[:3000]
    assert "Läste uppgifter" in r.text or "cw-web-1" in r.text


def test_english_is_one_click_away(stack: Stack) -> None:
    from .stack import post_form

    cw = sign_in(stack.url, PEOPLE["case_worker"])
    assert "<h1>Ärenden</h1>" in cw.get("/caseload").text
    r = post_form(cw, "/caseload", "/language", {"locale": "en", "next": "/caseload"})
    assert r.status_code == 303 and r.headers["location"] == "/caseload"
    page = cw.get("/caseload").text
    assert '<html lang="en">' in page and "<h1>Cases</h1>" in page
    assert "Referred" in page and "På svenska" in page
