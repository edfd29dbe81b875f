"""Who may open which page of the web app: every route × every caller, written down once.

The web app decides only what to show; the APIs check every call again. Here the APIs are
down on purpose, so a caller the web app lets through reaches them and gets the friendly
503 page, while a caller it stops gets the sign-in redirect (303) or the 403 page first.
The table is checked against the app's routes, so a new page without a row fails."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from asf_testing import ANONYMOUS, JWT_TEST_SECRET, VARIANTS, api_routes, free_port
from web.app import create_app
from web.settings import WebSettings

DOWN = 503
"""Let through: the page calls an API, which is down here."""
SIGN_IN = 303


def let(status: int, *variants: str, others: int = 403) -> dict[str, int]:
    """`status` for `variants` (signed in with those roles), 403 for the other signed-in
    callers, the sign-in redirect without a session."""
    return {v: SIGN_IN if v == ANONYMOUS else status if v in variants else others
            for v in VARIANTS}


def anyone(status: int) -> dict[str, int]:
    return dict.fromkeys(VARIANTS, status)


CW = ("case_worker", "case_worker_other")
REPS = ("company_rep", "company_rep_other")
SIGNED_IN = tuple(v for v in VARIANTS if v != ANONYMOUS)
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    # public and operations
    ("GET", "/"): {**anyone(200), **{v: 303 for v in SIGNED_IN}},  # → the role's start page
    ("GET", "/healthz"): anyone(200),
    ("GET", "/readyz"): anyone(503),
    ("GET", "/metrics"): anyone(200),
    ("GET", "/signed-out"): anyone(200),
    ("GET", "/sign-in"): anyone(303),  # → /dev-login in development without OIDC
    ("GET", "/auth/callback"): anyone(404),  # no OIDC configured here
    ("POST", "/sign-out"): anyone(303),
    ("POST", "/language"): anyone(303),
    ("GET", "/dev-login"): anyone(200),
    ("POST", "/dev-login"): anyone(303),
    # case worker
    ("GET", "/caseload"): let(DOWN, *CW),
    ("GET", "/caseload/stream"): let(200, *CW),  # the relay answers "retry later"
    ("GET", "/worklists"): let(DOWN, *CW),
    ("POST", "/participants/search"): let(DOWN, *CW),
    ("GET", "/participants/new"): let(200, *CW),
    ("POST", "/participants/new"): let(DOWN, *CW),
    ("GET", "/participants/{participant_id}"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/transitions"): let(DOWN, *CW),
    ("GET", "/participants/{participant_id}/close"): let(DOWN, *CW),
    ("GET", "/participants/{participant_id}/employment"): let(DOWN, *CW),
    ("GET", "/participants/{participant_id}/placements/new"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/placements"): let(DOWN, *CW),
    ("POST", "/placements/{placement_id}/end"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/follow-ups"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/notes"): let(DOWN, *CW),
    ("GET", "/participants/{participant_id}/edit"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/edit"): let(DOWN, *CW),
    ("GET", "/participants/{participant_id}/erase"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/erase"): let(DOWN, *CW),
    # an email's link: a case worker's placement, or the rep's week of attendance
    ("GET", "/placements/{placement_id}"): let(DOWN, *CW, *REPS, others=404),
    # the plan, attendance and monthly statements (issue 19)
    ("GET", "/participants/{participant_id}/plan"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/plan"): let(DOWN, *CW),
    ("POST", "/participants/{participant_id}/plan/reviews"): let(DOWN, *CW),
    ("GET", "/attendance"): let(DOWN, *REPS),
    ("POST", "/attendance/{placement_id}"): let(DOWN, *REPS),
    ("GET", "/statements"): let(DOWN, *REPS, *CW),
    ("GET", "/statements/{statement_id}"): let(DOWN, *REPS, *CW),
    ("GET", "/statements/{statement_id}.csv"): let(DOWN, *REPS, *CW),
    ("POST", "/statements/{statement_id}/corrections"): let(DOWN, *REPS, *CW),
    ("GET", "/rates"): let(DOWN, *CW, "analyst"),
    ("POST", "/rates"): let(DOWN, *CW),
    # registry
    ("GET", "/review"): let(DOWN, "registry_officer"),
    ("GET", "/companies"): {**let(DOWN, *CW, "registry_officer", "analyst", others=303)},
    ("GET", "/companies/import"): let(200, "registry_officer"),
    ("POST", "/companies/import"): let(422, "registry_officer"),  # no file chosen
    ("GET", "/companies/new"): let(DOWN, "registry_officer", *REPS),
    ("POST", "/companies/new"): let(DOWN, "registry_officer", *REPS),
    ("GET", "/my-company"): let(303, *REPS),  # → their company's page
    ("GET", "/companies/{company_id}"): let(DOWN, *SIGNED_IN),
    ("GET", "/companies/{company_id}/edit"): let(DOWN, "registry_officer", *REPS),
    ("POST", "/companies/{company_id}/edit"): let(DOWN, "registry_officer", *REPS),
    ("POST", "/companies/{company_id}/verification"): let(DOWN, "registry_officer"),
    ("POST", "/companies/{company_id}/deregistration"): let(DOWN, "registry_officer"),
    ("POST", "/companies/{company_id}/contracts"): let(DOWN, "registry_officer", *REPS),
    # analyst
    ("GET", "/stats"): let(DOWN, "analyst", *CW),
    ("GET", "/learning-examples"): let(DOWN, "analyst", "registry_officer"),
    ("GET", "/learning-examples/new"): let(DOWN, *SIGNED_IN),
    ("POST", "/learning-examples/new"): let(DOWN, *SIGNED_IN),
    ("GET", "/learning-examples/{example_id}"): let(DOWN, "analyst", "registry_officer"),
    ("POST", "/learning-examples/{example_id}/publication"): let(DOWN, "analyst"),
    ("GET", "/contacts"): let(DOWN, "analyst"),
    ("GET", "/contacts/new"): let(DOWN, "analyst"),
    ("POST", "/contacts/new"): let(DOWN, "analyst"),
    ("GET", "/contacts/{contact_id}"): let(DOWN, "analyst"),
    ("POST", "/contacts/{contact_id}"): let(DOWN, "analyst"),
    ("GET", "/subscriptions"): let(DOWN, "analyst"),
    ("GET", "/subscriptions/new"): let(DOWN, "analyst"),
    ("POST", "/subscriptions/new"): let(DOWN, "analyst"),
    ("GET", "/subscriptions/{subscription_id}"): let(DOWN, "analyst"),
    ("POST", "/subscriptions/{subscription_id}"): let(DOWN, "analyst"),
    ("GET", "/templates"): let(DOWN, "analyst"),
    ("GET", "/templates/{name}"): let(DOWN, "analyst"),
    ("POST", "/templates/{name}/versions"): let(DOWN, "analyst"),
    ("POST", "/templates/{name}/versions/{version}/activation"): let(DOWN, "analyst"),
    ("GET", "/deliveries"): let(DOWN, "analyst", "registry_officer"),
    ("POST", "/deliveries/{delivery_id}/retry"): let(DOWN, "analyst"),
    # the public pages (SPEC 3.4): everybody, signed in or not; they call the registry's
    # public API without a token (down here), but the open-data page calls nothing
    ("GET", "/register"): anyone(DOWN),
    ("GET", "/register/{company_id}"): anyone(DOWN),
    ("GET", "/open-data"): anyone(200),
    ("GET", "/open-data/asf-register.{extension}"): anyone(DOWN),
    ("GET", "/handbook"): anyone(DOWN),
    ("GET", "/handbook/{example_id}"): anyone(DOWN),
    # auditor
    ("GET", "/audit"): let(200, "auditor"),
    ("POST", "/audit"): let(303, "auditor"),  # → the participant's access log
    ("GET", "/audit/participants/{participant_id}"): let(DOWN, "auditor"),
}

COMPANY = str(uuid.uuid4())
PEOPLE: dict[str, dict[str, str]] = {
    "case_worker": {"sub": "cw", "role": "case_worker", "municipality_code": "0180"},
    "case_worker_other": {"sub": "cw2", "role": "case_worker", "municipality_code": "1480"},
    "registry_officer": {"sub": "officer", "role": "registry_officer"},
    "company_rep": {"sub": "rep", "role": "company_rep", "company_id": COMPANY},
    "company_rep_other": {"sub": "rep2", "role": "company_rep",
                          "company_id": str(uuid.uuid4())},
    "analyst": {"sub": "analyst", "role": "analyst"},
    "auditor": {"sub": "auditor", "role": "auditor"},
}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture(scope="module")
def app() -> Any:
    down = f"http://127.0.0.1:{free_port()}"
    return create_app(WebSettings(
        app_env="development", jwt_secret=JWT_TEST_SECRET,
        session_secret="access-matrix-session-secret-0123456789",
        registry_url=down, casework_url=down, notifications_url=down, api_timeout=1.0))


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://web") as c:
        yield c


def test_every_route_has_a_row(app: Any) -> None:
    routes = {r for r in api_routes(app) if not r[1].startswith("/static")}
    assert routes == set(EXPECTED)


def _url(path: str) -> str:
    return (path.replace("{name}", "company_verified").replace("{version}", "2")
            .replace("{participant_id}", str(uuid.uuid4()))
            .replace("{company_id}", COMPANY)
            .replace("{placement_id}", str(uuid.uuid4()))
            .replace("{statement_id}", str(uuid.uuid4()))
            .replace("{example_id}", str(uuid.uuid4()))
            .replace("{contact_id}", str(uuid.uuid4()))
            .replace("{subscription_id}", str(uuid.uuid4()))
            .replace("{delivery_id}", str(uuid.uuid4()))
            .replace("{extension}", "csv"))


FORMS: dict[str, dict[str, str]] = {
    "/audit": {"participant_id": str(uuid.uuid4())},
    "/dev-login": {"sub": "someone", "role": "analyst"},
    "/language": {"locale": "en", "next": "/"},
    "/participants/search": {"personal_identity_number": "19900101-0017"},
    "/participants/{participant_id}/transitions": {"to": "assessment"},
}

CELLS = [(m, p, v) for (m, p) in EXPECTED for v in VARIANTS]


@pytest.mark.parametrize(("method", "path", "caller"), CELLS,
                         ids=[f"{m} {p} {v}" for m, p, v in CELLS])
async def test_access(client: httpx.AsyncClient, method: str, path: str, caller: str) -> None:
    page = await client.get("/signed-out")
    token = _CSRF.search(page.text)
    assert token
    if caller != ANONYMOUS:
        r = await client.post("/dev-login", data={**PEOPLE[caller], "next": "/",
                                                  "csrf_token": token.group(1)})
        assert r.status_code == 303, r.text
        token = _CSRF.search((await client.get("/signed-out")).text)
        assert token
    kwargs: dict[str, Any] = {}
    if method == "POST":
        kwargs["data"] = {**FORMS.get(path, {}), "csrf_token": token.group(1)}
    r = await client.request(method, _url(path), **kwargs)
    assert r.status_code == EXPECTED[(method, path)][caller], r.text[:500]
    assert "Traceback" not in r.text
