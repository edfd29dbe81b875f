"""Correcting a case's details and handing it to another case worker (a 412 when someone
else changed it first), and the case worker's worklists: follow-ups that are due and
placements flagged when their company was deregistered."""

from __future__ import annotations

from datetime import date, timedelta

from .stack import (
    PEOPLE,
    Stack,
    active_company,
    csrf_of,
    eventually,
    identity_number,
    post_form,
    sign_in,
)


def _case(stack: Stack, given: str) -> tuple[object, str]:
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": given, "family_name": "Ändrasson", "referral_source": "self",
        "personal_identity_number": identity_number()})
    return cw, r.headers["location"].rsplit("/", 1)[1]


def test_correcting_details_and_reassigning_with_a_stale_form_refused(stack: Stack) -> None:
    colleague = {"sub": "cw-web-3", "name": "Kollega", "role": "case_worker",
                 "municipality_code": "0180"}
    sign_in(stack.url, colleague).get("/caseload")  # casework now knows the colleague
    cw, pid = _case(stack, "Rätta")
    stale = cw.get(f"/participants/{pid}/edit").text
    r = post_form(cw, f"/participants/{pid}/edit", f"/participants/{pid}/edit", {
        "given_name": "Rätta", "family_name": "Ändrasson", "referral_source": "self",
        "phone": "070-111 22 33", "email": "", "assigned_to": "cw-web-1",
        "version": _version(cw.get(f"/participants/{pid}/edit").text)})
    assert r.status_code == 303, r.text[:2000]
    page = cw.get(f"/participants/{pid}").text
    assert "070-111 22 33" in page

    # The form read before that change is stale now: 412, and a reload is offered.
    r = cw.post(f"/participants/{pid}/edit", data={
        "given_name": "Rätta", "family_name": "Ändrasson", "referral_source": "self",
        "phone": "", "email": "", "assigned_to": "cw-web-3", "version": _version(stale),
        "csrf_token": csrf_of(stale)})
    assert r.status_code == 412
    assert "Någon annan har ändrat ärendet" in r.text
    assert f'href="/participants/{pid}/edit"' in r.text

    fresh = cw.get(f"/participants/{pid}/edit").text
    r = cw.post(f"/participants/{pid}/edit", data={
        "given_name": "Rätta", "family_name": "Ändrasson", "referral_source": "self",
        "phone": "070-111 22 33", "email": "", "assigned_to": "cw-web-3",
        "version": _version(fresh), "csrf_token": csrf_of(fresh)})
    assert r.status_code == 303, r.text[:2000]
    assert "cw-web-3" in cw.get(f"/participants/{pid}").text


def _version(html: str) -> str:
    marker = 'name="version" value="'
    return html.split(marker, 1)[1].split('"', 1)[0]


def test_worklists_show_due_follow_ups_and_flagged_placements(stack: Stack) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    company_id = active_company(stack, officer, "Flaggans Kooperativ")
    cw, employed = _case(stack, "Följ")
    cw, placed = _case(stack, "Flagga")
    for pid in (employed, placed):
        post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions",
                  {"to": "assessment"})

    def place(pid: str) -> bool:
        r = post_form(cw, f"/participants/{pid}/placements/new",
                      f"/participants/{pid}/placements",
                      {"company_id": company_id, "kind": "work_training",
                       "start": (date.today() - timedelta(days=120)).isoformat()})
        return r.status_code == 303

    for pid in (employed, placed):
        eventually(lambda pid=pid: place(pid), "a placement at the new company")
    r = post_form(cw, f"/participants/{employed}", f"/participants/{employed}/transitions", {
        "to": "employed", "employment.form": "unsubsidised",
        "employment.employer_name": "Verkstaden AB",
        "employment.start": (date.today() - timedelta(days=100)).isoformat()})
    assert r.status_code == 303, r.text[:2000]
    r = post_form(officer, f"/companies/{company_id}", f"/companies/{company_id}/deregistration",
                  {"reason": "bankruptcy"})
    assert r.status_code == 303, r.text[:2000]

    def listed() -> bool:
        page = cw.get("/worklists").text
        return f"/participants/{employed}#follow-ups" in page and \
            f"/participants/{placed}#placement-" in page

    eventually(listed, "the due follow-up and the flagged placement on the worklists")
