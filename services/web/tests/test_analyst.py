"""An analyst in Chromium: outcome statistics as charts with the numbers beside them,
publishing a learning example, and editing a template (a new version that does not render
is refused with the reason; a good one is saved, then activated)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from .browser import sign_in_as
from .stack import PEOPLE, Stack, post_form, sign_in


def _api_has(base_url: str, path: str) -> bool:
    spec = httpx.get(f"{base_url}/openapi.json").json()
    return path in spec["paths"]


def test_statistics_are_drawn_with_the_numbers_beside_them(stack: Stack, page: Any) -> None:
    sign_in_as(page, stack.url, PEOPLE["analyst"])
    page.goto(stack.url + "/stats")
    chart = page.get_by_role("img", name="Deltagare per steg")
    expect(chart).to_be_visible()
    table = page.get_by_role("table", name="Deltagare per steg – siffrorna")
    expect(table.get_by_role("rowheader", name="Kartläggning")).to_be_visible()
    expect(page.get_by_role("img", name="Aktiva företag per län")).to_be_visible()


def test_analyst_publishes_a_learning_example(stack: Stack, page: Any) -> None:
    if not _api_has(stack.registry.base_url, "/learning-examples/{example_id}/publication"):
        pytest.skip("the registry has no POST /learning-examples/{id}/publication yet")
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/learning-examples/new", "/learning-examples/new", {
        "title": "Caféet som blev en väg in", "municipality_code": "0180",
        "collaboration_types": "work_training", "summary": "Ett café i samverkan.",
        "contact.name": "Stina Inlämnare", "contact.email": "stina@example.se"})
    assert r.status_code == 303, r.text[:2000]
    sign_in_as(page, stack.url, PEOPLE["analyst"])
    page.get_by_role("link", name="Lärande exempel").click()
    page.get_by_role("link", name="Caféet som blev en väg in").first.click()
    page.get_by_label("Anteckning till den som skickade in").fill("Tack, fint exempel!")
    page.get_by_role("button", name="Publicera exemplet").click()
    page.get_by_text("Exemplet är publicerat.").wait_for()
    assert page.locator(".lead .tag").inner_text() == "Publicerat"
    assert page.get_by_role("button", name="Publicera exemplet").count() == 0


def test_analyst_edits_and_activates_a_template(stack: Stack, page: Any) -> None:
    if not _api_has(stack.notifications.base_url, "/templates/{name}/versions"):
        pytest.skip("notifications has no template versions yet")
    sign_in_as(page, stack.url, PEOPLE["analyst"])
    page.get_by_role("link", name="Mallar").click()
    page.get_by_role("link", name="company_verified", exact=True).click()
    expect(page.get_by_role("heading", name="Förhandsgranskning med exempeldata")).to_be_visible()
    subject = page.get_by_label("Ämnesrad på svenska")
    subject.fill("{{ company_name ")  # does not render
    page.get_by_role("button", name="Spara som ny version").click()
    summary = page.locator(".error-summary")
    summary.wait_for()
    assert "Svenska: Ämnesrad" in summary.inner_text()
    expect(page.locator("#f-sv-subject-error")).to_be_visible()  # the message beside the field
    page.get_by_label("Ämnesrad på svenska").fill("Välkommen i registret, {{ company_name }}!")
    page.get_by_label("Vad har ändrats?").fill("En varmare ämnesrad")
    page.get_by_role("button", name="Spara som ny version").click()
    page.get_by_text("är sparad. Aktivera den när du är nöjd.").wait_for()
    row = page.locator("#versions tr", has=page.get_by_text("En varmare ämnesrad"))
    version = row.locator("td").first.inner_text()
    row.get_by_role("button", name=f"Aktivera version {version}").click()
    page.get_by_text(f"Version {version} används nu för nya utskick.").wait_for()
    row = page.locator("#versions tr", has=page.get_by_text("En varmare ämnesrad"))
    assert "Ja, används nu" in row.inner_text()
    # The preview now renders the new subject with the sample data.
    expect(page.get_by_text("Välkommen i registret,").first).to_be_visible()
