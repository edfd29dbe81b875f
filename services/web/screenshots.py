"""`make screenshots`: the main pages of the web app, per role, as PNG files in
docs/screenshots/ (shown in the README).

Starts the whole stack itself (like the browser tests: each service as a process on a free
port, fresh databases, the machine's PostgreSQL and RabbitMQ), fills it with a little
data through the app, and photographs the pages in Debian's Chromium.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(Path(__file__).parent / "tests"))

from browser import chromium_missing, launched, sign_in_as  # noqa: E402
from stack import (  # noqa: E402
    PEOPLE,
    active_company,
    company_form,
    eventually,
    identity_number,
    post_form,
    sign_in,
    stack_in_thread,
)

OUT = ROOT / "docs" / "screenshots"


def main() -> int:
    missing = chromium_missing()
    if missing:
        print(missing)
        return 1
    OUT.mkdir(parents=True, exist_ok=True)
    postgres = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    broker = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    with tempfile.TemporaryDirectory() as logs, \
            stack_in_thread(postgres, broker, Path(logs)) as stack:
        url = stack.url
        officer = sign_in(url, PEOPLE["registry_officer"])
        company_id = active_company(stack, officer, "Returpunkten Ekonomisk Förening", places=8)
        active_company(stack, officer, "Café Gemenskap", places=4)
        post_form(officer, "/companies/new", "/companies/new",
                  company_form("Örebro Städkooperativ", municipality="1880"))
        cw = sign_in(url, PEOPLE["case_worker"])
        people = [("Amina", "Hassan", "referred"), ("Erik", "Lund", "assessment"),
                  ("Sara", "Berg", "in_training"), ("Fatima", "Ali", "employed")]
        case_ids = []
        for given, family, stage in people:
            r = post_form(cw, "/participants/new", "/participants/new", {
                "given_name": given, "family_name": family, "referral_source": "social_services",
                "personal_identity_number": identity_number(), "phone": "070-123 45 67"})
            pid = r.headers["location"].rsplit("/", 1)[1]
            case_ids.append(pid)
            if stage == "referred":
                continue
            post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions",
                      {"to": "assessment"})
            if stage == "assessment":
                continue
            eventually(lambda pid=pid: "Returpunkten" in cw.get(
                f"/participants/{pid}/placements/new").text, "the company in casework")
            post_form(cw, f"/participants/{pid}/placements/new",
                      f"/participants/{pid}/placements", {
                          "company_id": company_id, "kind": "work_training",
                          "start": "2026-09-01", "hours_per_week": "20"})
            post_form(cw, f"/participants/{pid}", f"/participants/{pid}/notes",
                      {"text": "Trivs bra i butiken, vill prova kassan."})
            if stage == "employed":
                post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions", {
                    "to": "employed", "employment.form": "wage_subsidy",
                    "employment.start": "2026-11-02",
                    "employment.employer_company_id": company_id})
        shots = [
            ("anonymous", "/", "start"),
            ("anonymous", "/dev-login", "dev-login"),
            ("anonymous", "/register", "public-register"),
            ("case_worker", "/caseload", "caseload"),
            ("case_worker", f"/participants/{case_ids[2]}", "case"),
            ("case_worker", f"/participants/{case_ids[1]}/placements/new", "placement"),
            ("case_worker", "/participants/new", "register-participant"),
            ("registry_officer", "/review", "review-queue"),
            ("registry_officer", f"/companies/{company_id}", "company"),
            ("registry_officer", f"/companies/{company_id}/edit", "company-form"),
            ("registry_officer", "/companies/import", "import"),
            ("analyst", "/stats", "stats"),
            ("analyst", "/templates/company_verified", "template"),
            ("auditor", f"/audit/participants/{case_ids[2]}", "access-log"),
            ("case_worker", f"/participants/{case_ids[2]}/plan", "plan"),
            ("case_worker", "/worklists", "worklists"),
            ("company_rep", "/attendance?week=2026-W36", "attendance"),
        ]
        people = {**PEOPLE, "company_rep": {"sub": "rep-web", "name": "Kim Företagare",
                                            "role": "company_rep", "company_id": company_id}}
        with launched() as browser:
            for role in ("anonymous", "case_worker", "registry_officer", "analyst", "auditor",
                         "company_rep"):
                context = browser.new_context(viewport={"width": 1200, "height": 900})
                page = context.new_page()
                if role != "anonymous":
                    sign_in_as(page, url, people[role])
                for who, path, name in shots:
                    if who != role:
                        continue
                    page.goto(url + path)
                    page.screenshot(path=str(OUT / f"{name}.png"), full_page=True)
                    print(f"docs/screenshots/{name}.png  ({role} {path})")
                if role == "case_worker":  # the same page on a phone, 320 px wide
                    page.set_viewport_size({"width": 320, "height": 640})
                    page.goto(url + f"/participants/{case_ids[2]}")
                    page.screenshot(path=str(OUT / "case-320px.png"))
                    print("docs/screenshots/case-320px.png  (case worker, 320 px)")
                context.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
