"""Issue 19 in Chromium against the real services: the company rep reports a week of
attendance and downloads last month's statement; the case worker writes and reviews a plan,
sees the attendance on the case page and the review in the worklist; a stale plan edit is
told so. axe-core and 320 px on every new page."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from casework.workdays import is_working_day

from .browser import axe_violations, describe, horizontal_overflow, sign_in_as, tab_to, too_wide
from .stack import PEOPLE, Stack, active_company, eventually, identity_number, post_form, sign_in

COMPANY = "Närvarons Återbruk"


def last_month(today: date | None = None) -> date:
    """The first day of the month before today's."""
    first = (today or date.today()).replace(day=1)
    return (first - timedelta(days=1)).replace(day=1)


def week_of(day: date) -> str:
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def full_week_in(month: date) -> date:
    """The Monday of the week around the 8th of `month`, or the 15th when that one has a
    Swedish public holiday on a weekday (its planned hours would be 0)."""
    for day in (8, 15):
        monday = month.replace(day=day) - timedelta(days=month.replace(day=day).weekday())
        if all(is_working_day(monday + timedelta(days=i)) for i in range(5)):
            return monday
    raise AssertionError(f"no week without a holiday around the 8th or 15th of {month}")


def close_month(stack: Stack, month: date) -> str:
    """Close `month` as casework's sweep does on the first working day (its own command,
    against the stack's database; the stack's casework runs no statement sweep)."""
    r = subprocess.run([sys.executable, "-m", "casework.cli", "close-month", "--month",
                        month.strftime("%Y-%m")], env=stack.casework_env, capture_output=True,
                       text=True, timeout=120, check=False)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


@pytest.fixture(scope="module")
def placed(stack: Stack) -> dict[str, str]:
    """A verified company and a participant placed there since the first of last month,
    20 hours a week (4 a working day)."""
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    company_id = active_company(stack, officer, COMPANY)
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Sigrid", "family_name": "Närvarosson",
        "personal_identity_number": identity_number(), "referral_source": "social_services"})
    pid = r.headers["location"].rsplit("/", 1)[1]
    post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions",
              {"to": "assessment"})
    eventually(lambda: COMPANY in cw.get(f"/participants/{pid}/placements/new").text,
               "the company in casework")
    r = post_form(cw, f"/participants/{pid}/placements/new", f"/participants/{pid}/placements",
                  {"company_id": company_id, "kind": "work_training",
                   "start": last_month().isoformat(), "hours_per_week": "20"})
    assert r.status_code == 303, r.text[:2000]
    return {"company_id": company_id, "participant_id": pid}


def rep(placed: dict[str, str]) -> dict[str, str]:
    return {"sub": "rep-närvaro", "name": "Kim Närvaro", "role": "company_rep",
            "company_id": placed["company_id"]}


def check_page(page: Any) -> list[str]:
    """axe-core's serious and critical findings, and overflow at 320 px."""
    problems = []
    found = axe_violations(page)
    if found:
        problems.append(f"{page.url}:\n{describe(found)}")
    size = page.viewport_size
    page.set_viewport_size({"width": 320, "height": 640})
    page.wait_for_timeout(50)
    if horizontal_overflow(page) > 0:
        problems.append(f"{page.url}: wider than 320 px: {too_wide(page)}")
    page.set_viewport_size(size)
    return problems


def test_the_rep_reports_a_week_and_downloads_last_months_statement(
        stack: Stack, browser: Any, page: Any, placed: dict[str, str], tmp_path: Path) -> None:
    problems: list[str] = []
    sign_in_as(page, stack.url, rep(placed))
    page.get_by_role("link", name="Närvaro", exact=True).click()
    this_week = page.get_by_role("heading", level=1).inner_text()
    assert this_week.startswith("Närvaro vecka")
    page.get_by_role("link", name="Föregående vecka").click()
    expect(page.get_by_role("heading", level=1)).not_to_have_text(this_week)

    # A week of last month (around the 8th or the 15th) without a public holiday: every day
    # of it inside the placement, with 4 hours planned each working day.
    monday = full_week_in(last_month())
    page.goto(f"{stack.url}/attendance?week={week_of(monday)}")
    week = page.locator("section.attendance-week", has_text="Sigrid N.")
    expect(week.get_by_role("heading", name="Sigrid N.")).to_be_visible()
    # The rep sees the given name and the family initial, nothing more of the person.
    assert "Närvarosson" not in page.content()
    problems += check_page(page)

    def hours(day: date) -> Any:
        return week.locator(f'input[name="{day.isoformat()}.hours_present"]')

    def reason(day: date) -> Any:
        return week.locator(f'select[name="{day.isoformat()}.absence_reason"]')

    days = [monday + timedelta(days=i) for i in range(5)]
    page.wait_for_function("() => window.htmx !== undefined")
    page.evaluate("() => { window.stillTheSamePage = true; }")
    # By keyboard: Monday and Tuesday 4 hours, Wednesday 0 without a reason, Thursday 30.
    tab_to(page, hours(days[0]))
    kb = page.keyboard
    kb.type("4")
    kb.press("Tab")
    kb.press("Tab")
    kb.type("4")
    kb.press("Tab")
    kb.press("Tab")
    kb.type("0")
    kb.press("Tab")
    kb.press("Tab")
    kb.type("30")
    kb.press("Enter")
    # Each refusal beside its field, in Swedish; the good days are saved.
    expect(page.locator(f"#a-{_pl(page)}-{days[2].isoformat()}-absence_reason-error")
           ).to_contain_text("Ange orsak till frånvaron")
    expect(page.locator(f"#a-{_pl(page)}-{days[3].isoformat()}-hours_present-error")
           ).to_contain_text("Får inte vara större än 24")
    row = week.locator(f"#day-{_pl(page)}-{days[0].isoformat()} td.reported")
    expect(row).to_have_text("4 tim")
    assert hours(days[3]).input_value() == "30"  # what was typed stays
    problems += check_page(page)

    reason(days[2]).select_option("sick")
    hours(days[3]).fill("4")
    hours(days[4]).fill("3,5")
    reason(days[4]).select_option("leave")
    week.get_by_role("button", name="Spara veckan för Sigrid N.").click()
    expect(week.get_by_text("Närvaron för Sigrid N. är sparad.")).to_be_visible()
    expect(week.locator(f"#day-{_pl(page)}-{days[2].isoformat()} td.reported")
           ).to_have_text("0 tim, Sjuk")
    expect(week.locator(f"#day-{_pl(page)}-{days[4].isoformat()} td.reported")
           ).to_have_text("3,5 tim, Ledig")
    # htmx swapped the placement's week in place: the page was never reloaded.
    assert page.evaluate("() => window.stillTheSamePage === true")
    # Seen again after a reload: what is reported is what casework has.
    page.reload()
    expect(week.locator(f"#day-{_pl(page)}-{days[3].isoformat()} td.reported")
           ).to_have_text("4 tim")

    # The municipality pays 100 kr per hour present in work training.
    r = post_form(sign_in(stack.url, PEOPLE["case_worker"]), "/rates", "/rates", {
        "kind": "work_training", "unit": "hour", "amount_sek": "100",
        "valid_from": last_month().isoformat()})
    assert r.status_code == 303, r.text[:2000]

    # Another week of the month, open with JavaScript off, when the month gets closed.
    stale_context = browser.new_context(java_script_enabled=False)
    stale = stale_context.new_page()
    try:
        sign_in_as(stale, stack.url, rep(placed))
        later = monday + timedelta(days=7)
        stale.goto(f"{stack.url}/attendance?week={week_of(later)}")
        stale.locator(f'input[name="{later.isoformat()}.hours_present"]').fill("4")
        assert re.search(r"statements issued: [1-9]", close_month(stack, last_month()))
        stale.get_by_role("button", name="Spara veckan för Sigrid N.").click()
        error = stale.locator(f"#a-{_pl(stale)}-{later.isoformat()}-hours_present-error")
        expect(error).to_contain_text(re.compile(
            rf"Månaden {last_month():%Y-%m} är stängd av månadsunderlag [0-9A-F]{{8}}"))
        expect(stale.locator(".error-summary")).to_be_visible()
    finally:
        stale_context.close()

    # The closed month's statement: in the list, with its totals, as CSV, printable.
    page.get_by_role("link", name="Månadsunderlag", exact=True).first.click()
    problems += check_page(page)
    page.get_by_role("link", name=re.compile(r"^[0-9A-F]{8}$")).first.click()
    page.get_by_role("heading", name=re.compile("^Månadsunderlag")).wait_for()
    main = page.locator("main").inner_text()
    assert re.search(r"Timmar närvarande\s*15,50", main), main
    assert re.search(r"Dagar närvarande\s*4", main), main
    assert re.search(r"Ersättning\s*1\s550,00 kr", main), main
    assert "Sigrid N." in main and "Närvarosson" not in main
    problems += check_page(page)
    expect(page.get_by_role("button", name="Skriv ut")).to_be_visible()
    page.emulate_media(media="print")
    assert not page.get_by_role("navigation", name="Huvudmeny").is_visible()
    page.emulate_media(media="screen")
    with page.expect_download() as info:
        page.get_by_role("link", name="Ladda ner som CSV").click()
    download = info.value
    assert download.suggested_filename.endswith(".csv")
    target = tmp_path / download.suggested_filename
    download.save_as(target)
    text = target.read_text(encoding="utf-8-sig")
    assert "Närvarosson" not in text
    rows = list(csv.DictReader(io.StringIO(text)))
    total = [r for r in rows if r["row"] == "total"]
    lines = [r for r in rows if r["row"] == "placement"]
    assert len(total) == 1 and float(total[0]["hours_present"]) == 15.5, text[:800]
    assert [(r["given_name"], r["family_initial"]) for r in lines] == [("Sigrid", "N")]

    # A day of the closed month corrected: a new statement supersedes the old one.
    old_statement = page.url
    form = page.locator("#correct")
    form.get_by_label("Deltagare").select_option(label="Sigrid N. – Arbetsträning")
    form.get_by_label("Dag").fill((last_month() - timedelta(days=1)).isoformat())
    form.get_by_label("Timmar närvarande").fill("4")
    form.get_by_label("Varför rättas underlaget?").select_option("attendance")
    form.get_by_role("button", name="Rätta och utfärda ett nytt underlag").click()
    expect(page.locator("#f-correction-date-error")).to_contain_text(
        "Dagen ligger inte i underlagets månad")
    problems += check_page(page)
    form = page.locator("#correct")
    form.get_by_label("Dag").fill(days[2].isoformat())
    form.get_by_role("button", name="Rätta och utfärda ett nytt underlag").click()
    expect(page.get_by_text("Underlaget är rättat.")).to_be_visible()
    main = page.locator("main").inner_text()
    assert re.search(r"Timmar närvarande\s*19,50", main), main
    assert re.search(r"Ersättning\s*1\s950,00 kr", main), main
    assert "Rättelse av" in main
    page.goto(old_statement)
    expect(page.locator("main")).to_contain_text("Ersatt av en rättelse")
    expect(page.locator("#correct")).to_have_count(0)

    # The closed week now says so, with a link to the statement.
    page.goto(f"{stack.url}/attendance?week={week_of(monday)}")
    expect(page.get_by_text("Månaden är stängd:").first).to_be_visible()
    page.get_by_role("button", name="In English").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Attendance week")
    expect(page.get_by_text("The month is closed:").first).to_be_visible()
    assert not problems, "\n".join(problems)


def _pl(page: Any) -> str:
    """The placement id of the (only) attendance section on the page."""
    section_id = page.locator("section.attendance-week").first.get_attribute("id")
    assert section_id
    return section_id.removeprefix("placement-")


def test_a_case_worker_writes_and_reviews_a_plan_and_sees_the_attendance(
        stack: Stack, page: Any, placed: dict[str, str]) -> None:
    pid = placed["participant_id"]
    # The company reports today (4 hours: no absence, on a working day or not).
    company = sign_in(stack.url, rep(placed))
    monday = date.today() - timedelta(days=date.today().weekday())
    grid = company.get(f"/attendance?week={week_of(monday)}").text
    placement = re.search(r'id="placement-([0-9a-f-]{36})"', grid)
    assert placement, grid[:2000]
    r = post_form(company, f"/attendance?week={week_of(monday)}",
                  f"/attendance/{placement.group(1)}",
                  {"week": week_of(monday), f"{date.today().isoformat()}.hours_present": "4"})
    assert r.status_code == 303, r.text[:2000]
    # An email's link to the placement opens the rep's week of attendance.
    r = company.get(f"/placements/{placement.group(1)}")
    assert r.status_code == 303
    assert r.headers["location"] == \
        f"/attendance?week={week_of(monday)}#placement-{placement.group(1)}"
    assert company.get(f"/placements/{uuid.uuid4()}").status_code == 404

    problems: list[str] = []
    sign_in_as(page, stack.url, PEOPLE["case_worker"], next_url=f"/participants/{pid}")
    plan = page.locator("#plan")
    expect(plan.get_by_text("Ingen plan är skriven än.")).to_be_visible()
    attendance = page.locator(f"#attendance-{placement.group(1)}")
    expect(attendance.locator("tbody tr").first).to_contain_text("4,0")
    problems += check_page(page)

    plan.get_by_role("link", name="Skriv planen").click()
    problems += check_page(page)
    goal = page.get_by_role("group", name="Mål 1 (nytt)")
    goal.get_by_label("Mål", exact=True).fill("Klara ett heltidsschema i butiken")
    page.get_by_role("group", name="Aktivitet 1").get_by_label("Aktivitet", exact=True).fill(
        "Arbetsträning i butiken, fyra timmar om dagen")
    page.get_by_label("Nästa uppföljning av planen").fill(
        (date.today() - timedelta(days=1)).isoformat())
    page.get_by_role("group", name="Var deltagaren med och skrev planen?").get_by_label(
        "Ja").check()
    # A goal without its date, then a review date already past: each beside its field.
    page.get_by_role("button", name="Spara planen").click()
    expect(page.locator("#f-goals-0--target_date-error")).to_contain_text("Ange ett datum")
    problems += check_page(page)
    goal = page.get_by_role("group", name="Mål 1 (nytt)")
    assert goal.get_by_label("Mål", exact=True).input_value() == \
        "Klara ett heltidsschema i butiken"
    goal.get_by_label("Måldatum").fill((date.today() + timedelta(days=90)).isoformat())
    page.get_by_role("button", name="Spara planen").click()
    expect(page.locator("#f-next_review_date-error")).to_contain_text("Får inte ha passerat")
    page.get_by_label("Nästa uppföljning av planen").fill(date.today().isoformat())
    page.get_by_role("button", name="Spara planen").click()
    expect(page.get_by_text("Planen är sparad.")).to_be_visible()
    expect(plan.get_by_text("Klara ett heltidsschema i butiken")).to_be_visible()
    expect(plan.get_by_text("Dags att följa upp")).to_be_visible()

    # The review is due today: it is in the worklist.
    page.get_by_role("link", name="Att göra").click()
    row = page.locator(f"#plan-review-{pid}")
    expect(row).to_contain_text("Dags nu")
    problems += check_page(page)
    row.get_by_role("link").click()

    # A review without the next date is refused beside the field; then recorded.
    plan = page.locator("#plan")
    plan.get_by_label("Planen fortsätter som den är").check()
    plan.get_by_role("button", name="Registrera uppföljningen").click()
    expect(page.locator("#f-review-next_review_date-error")).to_contain_text(
        "Ange nästa uppföljning")
    plan = page.locator("#plan")
    plan.get_by_label("Planen fortsätter som den är").check()
    plan.get_by_label(re.compile("^Nästa uppföljning")).fill(
        (date.today() + timedelta(days=60)).isoformat())
    plan.get_by_label("Kommentar").fill("Går bra, fortsätter.")
    plan.get_by_role("button", name="Registrera uppföljningen").click()
    expect(page.get_by_text("Uppföljningen av planen är registrerad.")).to_be_visible()
    expect(page.locator("#plan")).to_contain_text("Planen fortsätter som den är")
    expect(page.locator("#plan")).not_to_contain_text("Dags att följa upp")
    timeline = page.locator("ol.timeline")
    expect(timeline).to_contain_text("Genomförandeplan skriven")
    expect(timeline).to_contain_text("Genomförandeplan uppföljd")
    # Two months ahead now: out of the worklist until two weeks before.
    page.goto(f"{stack.url}/worklists")
    expect(page.get_by_role("heading", name="Planer att följa upp")).to_be_visible()
    expect(page.locator(f"#plan-review-{pid}")).to_have_count(0)
    assert not problems, "\n".join(problems)


def test_a_stale_plan_edit_is_told_someone_else_changed_it(
        stack: Stack, page: Any, placed: dict[str, str]) -> None:
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Stina", "family_name": "Samtidigsson",
        "personal_identity_number": identity_number(), "referral_source": "self"})
    pid = r.headers["location"].rsplit("/", 1)[1]
    sign_in_as(page, stack.url, PEOPLE["case_worker"], next_url=f"/participants/{pid}/plan")
    page.get_by_role("group", name="Mål 1 (nytt)").get_by_label("Mål", exact=True).fill(
        "Mitt mål")
    page.get_by_role("group", name="Mål 1 (nytt)").get_by_label("Måldatum").fill(
        (date.today() + timedelta(days=30)).isoformat())
    page.get_by_role("group", name="Var deltagaren med och skrev planen?").get_by_label(
        "Nej").check()
    # Meanwhile a colleague writes the plan first.
    r = post_form(cw, f"/participants/{pid}/plan", f"/participants/{pid}/plan", {
        "version": "0", "goals[0].text": "Kollegans mål",
        "goals[0].target_date": (date.today() + timedelta(days=40)).isoformat(),
        "participant_involved": "yes"})
    assert r.status_code == 303, r.text[:2000]
    page.get_by_role("button", name="Spara planen").click()
    notice = page.locator("#stale")
    expect(notice).to_contain_text("Någon annan har ändrat planen")
    expect(notice).to_contain_text("Dina ändringar är inte sparade")
    assert page.get_by_role("group", name="Mål 1 (nytt)").get_by_label(
        "Mål", exact=True).input_value() == "Mitt mål"  # what was typed stays
    notice.get_by_role("link", name="Läs in den nya versionen").click()
    expect(page.get_by_role("group", name="Mål 1", exact=True).get_by_label(
        "Mål", exact=True)).to_have_value("Kollegans mål")
    # Saved on the version read now, it goes through.
    page.get_by_role("group", name="Mål 1", exact=True).get_by_label(
        "Mål", exact=True).fill("Mitt mål")
    page.get_by_role("button", name="Spara planen").click()
    expect(page.get_by_text("Planen är sparad.")).to_be_visible()
    expect(page.locator("#plan")).to_contain_text("Mitt mål")
    expect(page.locator("#plan")).not_to_contain_text("Kollegans mål")

    # A review recorded on a plan a colleague has changed since: refused, and said so.
    plan = page.locator("#plan")
    plan.get_by_label("Planen fortsätter som den är").check()
    plan.get_by_label(re.compile("^Nästa uppföljning")).fill(
        (date.today() + timedelta(days=20)).isoformat())
    html = cw.get(f"/participants/{pid}").text
    version = re.search(r'name="version" value="(\d+)"', html)
    assert version, html[:2000]
    r = post_form(cw, f"/participants/{pid}", f"/participants/{pid}/plan/reviews", {
        "version": version.group(1), "review.outcome": "revise",
        "review.date": date.today().isoformat(),
        "review.next_review_date": (date.today() + timedelta(days=10)).isoformat()})
    assert r.status_code == 303, r.text[:2000]
    plan.get_by_role("button", name="Registrera uppföljningen").click()
    expect(page.locator(".error-summary")).to_contain_text(
        "Någon annan har ändrat planen sedan du öppnade sidan")
    expect(page.locator("#plan")).to_contain_text("Planen ska skrivas om")  # the colleague's


def test_a_case_worker_sets_a_rate_once_per_kind_and_date(stack: Stack, page: Any) -> None:
    sign_in_as(page, stack.url, PEOPLE["case_worker"], next_url="/statements")
    page.get_by_role("link", name="Ersättningsnivåer").click()
    valid_from = (date.today() + timedelta(days=400)).isoformat()
    for _ in range(2):
        page.get_by_label("Typ av placering").select_option("internship")
        page.get_by_label("per dag närvarande").check()
        page.get_by_label("Belopp i kronor").fill("350,50")
        page.get_by_label("Gäller från").fill(valid_from)
        page.get_by_role("button", name="Spara nivån").click()
    # The second time the same kind and date: refused beside the date, nothing changed.
    expect(page.locator("#f-valid_from-error")).to_contain_text(
        "Det finns redan en nivå för den typen från det datumet")
    rows = page.locator("tbody tr", has_text="Praktik")
    expect(rows).to_have_count(1)
    expect(rows).to_contain_text("350,50 kr per dag närvarande")
    problems = check_page(page)
    assert not problems, "\n".join(problems)
