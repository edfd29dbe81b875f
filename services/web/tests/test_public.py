"""The public pages in Chromium and over HTTP, without any token, against the real registry:
a newcomer finds the active companies in a county that can take part in a reserved
procurement, opens one and downloads the register as CSV; a pending company, a contact the
company did not make public and a learning example's submitter never show; the pages work
with JavaScript off and at 320 px, and axe finds nothing serious."""

from __future__ import annotations

import csv
import io
import json
import re
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from web.routes.public import CSV_COLUMNS

from .browser import axe_violations, describe, horizontal_overflow, sign_in_as, too_wide
from .stack import PEOPLE, Stack, company_form, eventually, post_form, sign_in

TAG = uuid.uuid4().hex[:6]
"""In every name here, so this module's companies and examples are told from the others'."""


def _company(officer: httpx.Client, name: str, municipality: str, *, eligible: bool,
             contact: tuple[str, str], public: bool, verify: bool = True) -> str:
    form = company_form(name, municipality)
    form["contacts[0].name"], form["contacts[0].email"] = contact
    form["contacts[0].role"] = "Verksamhetsledare"
    if public:
        form["contacts[0].public"] = "on"
    if not eligible:  # 2 of 20 in the target group: 10 %, below the 30 % of LOU 4:18
        form["workforce.target_group_engaged"] = "2"
    r = post_form(officer, "/companies/new", "/companies/new", form)
    assert r.status_code == 303, r.text[:2000]
    company_id = r.headers["location"].rsplit("/", 1)[1]
    if verify:
        r = post_form(officer, f"/companies/{company_id}",
                      f"/companies/{company_id}/verification",
                      {"decision": "verified", "level": "verified"})
        assert r.status_code == 303, r.text[:2000]
    return company_id


def _example(client: httpx.Client, analyst: httpx.Client, title: str, municipality: str,
             kind: str, *, publish: bool) -> str:
    r = post_form(client, "/learning-examples/new", "/learning-examples/new", {
        "title": title, "municipality_code": municipality, "collaboration_types": kind,
        "summary": f"Så samarbetade kommunen och företaget ({title}).",
        "contact.name": "Stina Inlämnare", "contact.email": "stina.inlamnare@example.se"})
    assert r.status_code == 303, r.text[:2000]
    m = re.search(r'href="/learning-examples/([0-9a-f-]{36})">' + re.escape(title),
                  analyst.get("/learning-examples").text)
    assert m, f"{title} is not in the analyst's list"
    if publish:
        r = post_form(analyst, f"/learning-examples/{m.group(1)}",
                      f"/learning-examples/{m.group(1)}/publication",
                      {"decision": "published", "note": ""})
        assert r.status_code == 303, r.text[:2000]
    return m.group(1)


@pytest.fixture(scope="module")
def data(stack: Stack) -> dict[str, str]:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    analyst = sign_in(stack.url, PEOPLE["analyst"])
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    ids = {
        # Stockholms län (01): one eligible with a public contact, one not eligible with a
        # contact kept private, one pending; Västra Götalands län (14): one eligible.
        "eligible": _company(officer, f"Abborrens Återbruk {TAG}", "0180", eligible=True,
                             contact=("Petra Publik", "petra.publik@example.se"),
                             public=True),
        "not_eligible": _company(officer, f"Bergets Bageri {TAG}", "0180", eligible=False,
                                 contact=("Hanna Hemlig", "hanna.hemlig@example.se"),
                                 public=False),
        "pending": _company(officer, f"Väntans Verkstad {TAG}", "0180", eligible=True,
                            contact=("Vera Väntan", "vera@example.se"), public=True,
                            verify=False),
        "other_county": _company(officer, f"Abborrens Syster {TAG}", "1480", eligible=True,
                                 contact=("Otto Annan", "otto@example.se"), public=True),
    }
    ids["example"] = _example(cw, analyst, f"Reserverat för Abborren {TAG}", "0180",
                              "reserved_contract", publish=True)
    ids["example_elsewhere"] = _example(cw, analyst, f"Arbetsträning i Göteborg {TAG}",
                                        "1480", "work_training", publish=True)
    ids["example_unpublished"] = _example(cw, analyst, f"Ännu inte granskat {TAG}", "0180",
                                          "work_training", publish=False)
    return ids


SECRETS = ("Hanna Hemlig", "hanna.hemlig@example.se", "Väntans Verkstad", "Stina Inlämnare",
           "stina.inlamnare@example.se", "Ännu inte granskat")
"""What no public page or file may ever show: a contact the company kept private, a pending
company, a learning example's submitter, an example not published."""


# --- the newcomer's path, in Chromium ----------------------------------------------------

def test_a_newcomer_finds_eligible_companies_in_a_county_opens_one_and_downloads_the_csv(
        stack: Stack, page: Any, data: dict[str, str], tmp_path: Path) -> None:
    page.goto(stack.url + "/")
    page.get_by_role("navigation", name="Huvudmeny").get_by_role(
        "link", name="Registret").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(
        "Registret över arbetsintegrerande sociala företag")
    # The front page's picture: active companies and places per county, with the numbers.
    expect(page.get_by_role("img", name="Aktiva företag per län")).to_be_visible()
    expect(page.get_by_role("img", name="Platser för arbetsträning per län")).to_be_visible()
    numbers = page.get_by_role(
        "table", name="Aktiva företag och platser för arbetsträning per län – siffrorna")
    expect(numbers.get_by_role("rowheader", name="Stockholms län")).to_be_visible()

    page.get_by_label("Län", exact=True).select_option(label="Stockholms län")
    page.get_by_label("Bara företag som kan delta i reserverad upphandling").check()
    page.get_by_role("button", name="Sök").click()
    page.wait_for_url(re.compile(r"county_code=01.*reserved_contract_eligible=true"))
    results = page.locator(".results")
    expect(results.get_by_role("link", name=f"Abborrens Återbruk {TAG}")).to_be_visible()
    for absent in (f"Bergets Bageri {TAG}", f"Väntans Verkstad {TAG}",
                   f"Abborrens Syster {TAG}"):
        expect(results.get_by_role("link", name=absent)).to_have_count(0)

    results.get_by_role("link", name=f"Abborrens Återbruk {TAG}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Abborrens Återbruk {TAG}")
    expect(page.get_by_text("Petra Publik, Verksamhetsledare")).to_be_visible()
    facts = page.locator("dl.summary")
    expect(facts).to_contain_text(re.compile(r"Kan delta i reserverad upphandling\s*Ja"))
    expect(facts).to_contain_text("Stockholms län")

    page.get_by_role("navigation", name="Huvudmeny").get_by_role(
        "link", name="Öppna data").click()
    expect(page.get_by_role("link", name="Creative Commons CC0 1.0")).to_be_visible()
    with page.expect_download() as info:
        page.get_by_role("link", name="Registret som CSV").click()
    download = info.value
    assert re.fullmatch(r"asf-register-\d{8}T\d{6}Z\.csv", download.suggested_filename)
    path = tmp_path / "register.csv"
    download.save_as(path)
    rows = list(csv.DictReader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))
    mine = {r["name"]: r for r in rows if TAG in r["name"]}
    assert set(mine) == {f"Abborrens Återbruk {TAG}", f"Bergets Bageri {TAG}",
                         f"Abborrens Syster {TAG}"}  # active only: not the pending one
    row = mine[f"Abborrens Återbruk {TAG}"]
    assert row["id"] == data["eligible"]
    assert (row["county_code"], row["county_name"]) == ("01", "Stockholms län")
    assert row["reserved_contract_eligible"] == "true"
    assert mine[f"Bergets Bageri {TAG}"]["reserved_contract_eligible"] == "false"
    assert [c["name"] for c in json.loads(row["contacts"])] == ["Petra Publik"]
    assert json.loads(mine[f"Bergets Bageri {TAG}"]["contacts"]) == []


# --- what never shows --------------------------------------------------------------------

def test_pending_companies_private_contacts_and_submitters_never_show(
        stack: Stack, data: dict[str, str]) -> None:
    public = httpx.Client(base_url=stack.url, timeout=30)  # no session, no token
    pages = {path: public.get(path) for path in (
        "/register", f"/register?q={TAG}", "/register?county_code=01",
        f"/register/{data['eligible']}", f"/register/{data['not_eligible']}",
        f"/handbook?q={TAG}", f"/handbook/{data['example']}", "/open-data",
        "/open-data/asf-register.csv", "/open-data/asf-register.json")}
    for path, r in pages.items():
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        shown = [s for s in SECRETS if s in r.text]
        assert not shown, f"{path} shows {shown}"
    assert f"Abborrens Återbruk {TAG}" in pages[f"/register?q={TAG}"].text
    assert f"Bergets Bageri {TAG}" in pages[f"/register?q={TAG}"].text
    assert "petra.publik@example.se" in pages[f"/register/{data['eligible']}"].text
    not_shown = public.get(f"/register/{data['pending']}")
    assert not_shown.status_code == 404
    assert "Företaget finns inte i registret" in not_shown.text
    assert public.get(f"/handbook/{data['example_unpublished']}").status_code == 404
    assert public.get(f"/register/{uuid.uuid4()}").status_code == 404

    export = pages["/open-data/asf-register.json"].json()
    assert export["licence"] == "CC0-1.0" and export["produced_at"]
    names = {c["name"] for c in export["items"]}
    assert f"Abborrens Återbruk {TAG}" in names and f"Väntans Verkstad {TAG}" not in names
    csv_file = pages["/open-data/asf-register.csv"]
    assert csv_file.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv_file.headers["content-disposition"]
    assert csv_file.headers["x-produced-at"]


def test_the_open_data_page_documents_the_columns_the_file_has(stack: Stack) -> None:
    """The columns explained on /open-data are the real file's, in its order."""
    r = httpx.get(f"{stack.url}/open-data/asf-register.csv", timeout=30)
    header = next(csv.reader(io.StringIO(r.text, newline="")))
    assert header == [name for name, _ in CSV_COLUMNS]
    page = httpx.get(f"{stack.url}/open-data", timeout=30).text
    assert [m for m in re.findall(r"<code>(\w+)</code>", page)] == header


def test_the_downloads_answer_304_when_the_browser_has_the_file(stack: Stack) -> None:
    first = httpx.get(f"{stack.url}/open-data/asf-register.csv", timeout=30)
    etag = first.headers["etag"]
    again = httpx.get(f"{stack.url}/open-data/asf-register.csv",
                      headers={"If-None-Match": etag}, timeout=30)
    assert again.status_code == 304 and again.content == b""
    assert httpx.get(f"{stack.url}/open-data/asf-register.xml", timeout=30).status_code == 404


def test_the_handbook_is_searched_by_collaboration_type_and_county(
        stack: Stack, page: Any, data: dict[str, str]) -> None:
    page.goto(stack.url + "/handbook")
    page.get_by_label("Sök i rubrik och text").fill(TAG)
    page.get_by_label("Typ av samarbete").select_option(label="Reserverad upphandling")
    page.get_by_label("Län", exact=True).select_option(label="Stockholms län")
    page.get_by_role("button", name="Sök").click()
    results = page.locator(".results")
    expect(results.get_by_role("link", name=f"Reserverat för Abborren {TAG}")).to_be_visible()
    expect(results.get_by_role("link")).to_have_count(1)  # not Göteborg, not the unpublished
    results.get_by_role("link", name=f"Reserverat för Abborren {TAG}").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Reserverat för Abborren {TAG}")
    expect(page.locator("dl.summary")).to_contain_text("Reserverad upphandling")
    expect(page.get_by_text("Stina Inlämnare")).to_have_count(0)
    page.get_by_role("link", name="Fler exempel från Stockholms län").click()
    expect(page.get_by_role("link", name=f"Arbetsträning i Göteborg {TAG}")).to_have_count(0)


def test_a_bad_filter_is_explained_beside_its_field(stack: Stack) -> None:
    r = httpx.get(f"{stack.url}/register", params={"q": "x" * 101}, timeout=30)
    assert r.status_code == 422
    assert "error-summary" in r.text and "Sök på namn" in r.text


# --- JavaScript off, 320 px, axe ---------------------------------------------------------

def test_the_register_works_with_javascript_off_at_320_px(
        stack: Stack, browser: Any, data: dict[str, str]) -> None:
    context = browser.new_context(java_script_enabled=False,
                                  viewport={"width": 320, "height": 640})
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(stack.url + "/")
        page.get_by_role("link", name="Visa hela registret").click()
        page.get_by_label("Sök på namn").fill("Abborrens")
        page.get_by_label("Kommun", exact=True).select_option("0180")
        page.get_by_label("Bara företag som kan delta i reserverad upphandling").check()
        page.get_by_role("button", name="Sök").click()
        page.wait_for_url(re.compile(r"municipality_code=0180"))
        link = page.locator(".results").get_by_role("link", name=f"Abborrens Återbruk {TAG}")
        expect(link).to_be_visible()
        assert horizontal_overflow(page) == 0, too_wide(page)
        link.click()
        expect(page.get_by_role("heading", level=1)).to_have_text(f"Abborrens Återbruk {TAG}")
        assert horizontal_overflow(page) == 0, too_wide(page)
    finally:
        context.close()


def test_every_public_page_passes_axe_and_fits_320_px(
        stack: Stack, browser: Any, data: dict[str, str]) -> None:
    paths = ["/", "/register", "/register?county_code=01&reserved_contract_eligible=true",
             f"/register/{data['eligible']}", f"/register/{data['not_eligible']}",
             f"/register/{data['pending']}", "/open-data", "/handbook",
             f"/handbook?q={TAG}&collaboration_type=reserved_contract",
             f"/handbook/{data['example']}", "/register?q=" + "x" * 101]
    problems = []
    for who in ("anonymous", "case_worker"):
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(15_000)
        try:
            if who != "anonymous":  # signed in, the public pages are in the menu too
                sign_in_as(page, stack.url, PEOPLE[who])
            for path in paths[1:] if who != "anonymous" else paths:
                page.set_viewport_size({"width": 1280, "height": 900})
                page.goto(stack.url + path)
                found = axe_violations(page)
                if found:
                    problems.append(f"{who} {path}:\n{describe(found)}")
                page.set_viewport_size({"width": 320, "height": 640})
                page.wait_for_timeout(50)
                overflow = horizontal_overflow(page)
                if overflow > 0:
                    problems.append(f"{who} {path}: {overflow} px wider than 320 px: "
                                    f"{too_wide(page)}")
            if who != "anonymous":
                page.goto(stack.url + "/register")
                nav = page.get_by_role("navigation", name="Huvudmeny")
                expect(nav.get_by_role("link", name="Registret")).to_have_attribute(
                    "aria-current", "page")
        finally:
            context.close()
    assert not problems, "\n".join(problems)


def test_the_public_pages_read_in_english(stack: Stack, data: dict[str, str]) -> None:
    client = httpx.Client(base_url=stack.url, timeout=30)
    page = client.get("/open-data").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    client.post("/language", data={"locale": "en", "next": "/register",
                                   "csrf_token": token.group(1)})
    html = client.get("/register").text
    assert "Register of work-integration social enterprises" in html
    assert "Active companies per county" in html
    assert "Open data" in client.get("/open-data").text


def _front_page_numbers(stack: Stack) -> tuple[int, int, int]:
    html = httpx.get(f"{stack.url}/register", timeout=30).text
    total = re.search(r'Hela landet</th><td class="num">([\d\s\u00a0]+)</td>'
                      r'<td class="num">([\d\s\u00a0]+)</td>', html)
    stockholm = re.search(r'>Stockholms län</a></th><td class="num">([\d\s\u00a0]+)</td>', html)
    assert total and stockholm, "no totals row or no row for Stockholms län"
    companies, places, in_stockholm = (int(re.sub(r"\D", "", g)) for g in (
        *total.groups(), stockholm.group(1)))
    return companies, places, in_stockholm


def test_the_pictures_numbers_are_the_registers(stack: Stack, data: dict[str, str]) -> None:
    """The front page's table (beside the charts) counts what the open data holds: the
    country's companies and places, and Stockholms län's companies (at most a minute old,
    as the registry lets them be kept)."""
    export = httpx.get(f"{stack.url}/open-data/asf-register.json", timeout=30).json()
    assert export["count"] == len(export["items"])
    expected = (export["count"], sum(c["training_places"] for c in export["items"]),
                sum(1 for c in export["items"] if c["county"]["code"] == "01"))
    assert expected[2] >= 2  # this module's own two, at least
    seen: list[tuple[int, int, int]] = []

    def same() -> bool:
        seen.append(_front_page_numbers(stack))
        return seen[-1] == expected

    eventually(same, f"the front page's numbers to be {expected} (last seen {seen[-1:]})",
               within=70)


def _registered_through_the_api(stack: Stack, name: str, municipality: str) -> str:
    """A company registered and verified over the registry's API (quicker than the forms)."""
    from asf_testing import org_number
    from asf_testing.tokens import auth

    officer = auth("registry_officer", sub="officer-pages")
    body = {"org_number": org_number(), "name": name, "legal_form": "ekonomisk_forening",
            "municipality_code": municipality, "industries": ["gardening"],
            "origin": "founded", "training_places": 3, "contacts": [],
            "workforce": {"as_of": "2026-01-01", "engaged_total": 10, "employees_total": 4,
                          "target_group_engaged": 6},
            "criteria": {"runs_business": True, "integration_purpose": True,
                         "participation": {"form": "ownership"}, "reinvests_profits": True,
                         "independent_of_public_sector": True}}
    registry = stack.registry.base_url
    r = httpx.post(f"{registry}/companies", json=body, headers=officer, timeout=30)
    assert r.status_code == 201, r.text
    company_id = str(r.json()["id"])
    r = httpx.post(f"{registry}/companies/{company_id}/verification", headers=officer,
                   json={"decision": "verified", "level": "verified"}, timeout=30)
    assert r.status_code == 200, r.text
    return company_id


def test_the_register_pages_on_with_javascript_off(stack: Stack, browser: Any) -> None:
    """More companies than fit on a page: the next page carries the filters on, and the
    first page is a link away."""
    for i in range(26):  # one page is 25
        _registered_through_the_api(stack, f"Kirunas Trädgård {i:02d} {TAG}", "2584")
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.set_default_timeout(15_000)
    try:
        page.goto(f"{stack.url}/register?municipality_code=2584&q={TAG}")
        results = page.locator(".results").get_by_role("link")
        expect(results).to_have_count(25)
        expect(results.first).to_have_text(f"Kirunas Trädgård 00 {TAG}")
        page.get_by_role("link", name="Nästa sida").click()
        expect(results).to_have_count(1)
        expect(results.first).to_have_text(f"Kirunas Trädgård 25 {TAG}")
        assert "municipality_code=2584" in page.url and f"q={TAG}" in page.url
        expect(page.get_by_role("link", name="Nästa sida")).to_have_count(0)
        expect(page.get_by_label("Kommun", exact=True)).to_have_value("2584")
        page.get_by_role("link", name="Första sidan").click()
        expect(results).to_have_count(25)
    finally:
        context.close()


def test_a_rep_chooses_to_show_their_contact_in_the_register(stack: Stack, page: Any) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    company_id = _company(officer, f"Repens Rosteri {TAG}", "0180", eligible=True,
                          contact=("Rut Rostare", "rut.rostare@example.se"), public=False)
    public_page = f"{stack.url}/register/{company_id}"
    assert "Rut Rostare" not in httpx.get(public_page, timeout=30).text
    sign_in_as(page, stack.url, {"sub": f"rep-{TAG}", "name": "Rut Rostare",
                                 "role": "company_rep", "company_id": company_id},
               next_url=f"/companies/{company_id}/edit")
    rut = page.get_by_role("group", name="Kontaktperson 1")
    shown = rut.get_by_label("Visa kontaktpersonen i det öppna registret")
    expect(shown).not_to_be_checked()
    shown.check()
    page.get_by_role("button", name="Spara ändringarna").click()
    page.get_by_text("Ändringarna är sparade.").wait_for()
    html = httpx.get(public_page, timeout=30).text
    assert "Rut Rostare" in html and "rut.rostare@example.se" in html
    page.goto(f"{stack.url}/companies/{company_id}/edit")  # the choice is kept when editing
    expect(page.get_by_role("group", name="Kontaktperson 1").get_by_label(
        "Visa kontaktpersonen i det öppna registret")).to_be_checked()


def test_the_public_pages_at_200_percent_zoom(stack: Stack, browser: Any,
                                              data: dict[str, str]) -> None:
    """200 % zoom of a 1280 px window is a 640 px CSS viewport at device scale 2."""
    context = browser.new_context(viewport={"width": 640, "height": 450},
                                  device_scale_factor=2)
    page = context.new_page()
    try:
        for path in ("/register", f"/register/{data['eligible']}", "/open-data", "/handbook",
                     f"/handbook/{data['example']}"):
            page.goto(stack.url + path)
            assert horizontal_overflow(page) == 0, (path, too_wide(page))
            expect(page.get_by_role("navigation", name="Huvudmeny").get_by_role(
                "link", name="Registret")).to_be_visible()
    finally:
        context.close()
