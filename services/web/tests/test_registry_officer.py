"""A registry officer in Chromium: verifying a company from the review queue, and importing
a CSV file with a bad row (nothing imported, the row shown), then the corrected file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from playwright.sync_api import expect

from .browser import sign_in_as
from .stack import PEOPLE, Stack, company_form, org_number, post_form, sign_in

HEADER = ("org_number,name,legal_form,municipality_code,industries,description,website,"
          "contact_name,contact_role,contact_email,contact_phone,workforce_as_of,"
          "employees_total,engaged_total,target_group_engaged,training_places,origin,"
          "runs_business,integration_purpose,participation_form,participation_description,"
          "reinvests_profits,independent_of_public_sector")


def _row(org: str, name: str, municipality: str = "0180") -> str:
    return (f"{org},{name},ekonomisk_forening,{municipality},recycling;cleaning,,,"
            "Kim Ek,manager,kim@example.se,,2026-01-01,5,12,7,4,existing,"
            "true,true,ownership,,true,true")


def test_officer_verifies_a_company_from_the_queue(stack: Stack, page: Any) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    r = post_form(officer, "/companies/new", "/companies/new",
                  company_form("Granskningens Kooperativ"))
    assert r.status_code == 303, r.text[:2000]

    sign_in_as(page, stack.url, PEOPLE["registry_officer"])
    assert page.url.endswith("/review")
    page.get_by_role("link", name="Granskningens Kooperativ").click()
    expect(page.get_by_text("Ja, alla fem kriterierna är uppfyllda")).to_be_visible()
    page.get_by_label("Godkänn: företaget blir aktivt i registret").check()
    page.get_by_label("Anteckning till beslutet").fill("Stadgar och årsredovisning granskade.")
    page.get_by_role("button", name="Spara beslutet").click()
    page.get_by_text("Företaget är godkänt och aktivt.").wait_for()
    assert page.locator(".lead .tag").inner_text() == "Aktiv"
    # Now only deregistration is offered, with a reason.
    expect(page.get_by_role("button", name="Avregistrera företaget")).to_be_visible()
    assert page.get_by_role("button", name="Spara beslutet").count() == 0


def test_csv_import_shows_the_bad_row_and_imports_nothing(stack: Stack, page: Any,
                                                          tmp_path: Path) -> None:
    good, other = org_number(), org_number()
    bad = tmp_path / "gamla-listan.csv"
    bad.write_text("\n".join([HEADER, _row(good, "Importens Första"),
                              _row(other, "Importens Andra", municipality="9999")]) + "\n",
                   encoding="utf-8")
    sign_in_as(page, stack.url, PEOPLE["registry_officer"])
    page.get_by_role("link", name="Importera", exact=True).click()
    page.get_by_label("CSV-fil").set_input_files(str(bad))
    page.get_by_role("button", name="Importera").click()
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert "Inget importerades" in summary.inner_text()
    rows = page.locator("#row-errors tbody tr")
    assert rows.count() == 1
    assert rows.first.locator("td").first.inner_text() == "3"
    assert "municipality_code" in rows.first.inner_text()
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    assert "Importens Första" not in officer.get("/companies?q=Importens&status=pending").text

    fixed = tmp_path / "rättade-listan.csv"
    fixed.write_text("\n".join([HEADER, _row(good, "Importens Första"),
                                _row(other, "Importens Andra")]) + "\n", encoding="utf-8")
    page.get_by_label("CSV-fil").set_input_files(str(fixed))
    page.get_by_role("button", name="Importera").click()
    page.get_by_text("2 företag importerades").wait_for()
    expect(page.get_by_role("link", name="Importens Första")).to_be_visible()
    expect(page.get_by_role("link", name="Importens Andra")).to_be_visible()


def test_every_contact_person_is_edited_added_and_removed_on_the_company_form(
        stack: Stack, page: Any) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    r = post_form(officer, "/companies/new", "/companies/new", company_form("Tre Kontakter"))
    company_url = stack.url + r.headers["location"]
    sign_in_as(page, stack.url, PEOPLE["registry_officer"])

    page.goto(company_url + "/edit")
    first = page.get_by_role("group", name="Kontaktperson 1")
    expect(first.get_by_label("Namn")).to_have_value("Kim Ek")
    new = page.get_by_role("group", name="Ny kontaktperson")
    new.get_by_label("Namn").fill("Alva Berg")
    new.get_by_label("E-post").fill("alva@example.se")
    page.get_by_role("button", name="Spara ändringarna").click()
    page.get_by_text("Ändringarna är sparade.").wait_for()
    main = page.locator("main")
    expect(main).to_contain_text("Kim Ek")
    expect(main).to_contain_text("alva@example.se")

    # Both are on the form again, with room for a third. Kim is removed by emptying every
    # field; the new one has no name, which the registry refuses: the error sits beside the
    # field typed in, though the registry counts the contacts without Kim.
    page.goto(company_url + "/edit")
    expect(page.get_by_role("group", name="Kontaktperson 2").get_by_label("Namn")).to_have_value(
        "Alva Berg")
    for field in ("Namn", "E-post"):
        page.get_by_role("group", name="Kontaktperson 1").get_by_label(field).fill("")
    page.get_by_role("group", name="Ny kontaktperson").get_by_label("E-post").fill(
        "noa@example.se")
    page.get_by_role("button", name="Spara ändringarna").click()
    missing = page.locator('input[name="contacts[2].name"]')
    expect(missing).to_have_attribute("aria-invalid", "true")
    expect(page.locator('input[name="contacts[1].name"]')).to_have_value("Alva Berg")
    expect(page.locator('input[name="contacts[0].name"]')).to_have_count(0)
    missing.fill("Noa Lund")
    page.get_by_role("button", name="Spara ändringarna").click()
    page.get_by_text("Ändringarna är sparade.").wait_for()
    expect(main).to_contain_text("Alva Berg")
    expect(main).to_contain_text("Noa Lund")
    expect(main).not_to_contain_text("Kim Ek")
