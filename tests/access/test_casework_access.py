"""Who may do what in casework: every endpoint × every caller, own and other municipality,
written down once. A case worker of another municipality gets 404 for a participant, so
that its existence is not revealed.

The table is checked against the app's routes, so a new endpoint without a row fails."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asf_contracts.registry import CompanyPayload
from asf_testing import (
    ANONYMOUS,
    DATA_KEY,
    JWT_TEST_SECRET,
    VARIANTS,
    allow,
    api_routes,
    auth,
    fresh_database,
    identity_number,
    public,
    serving,
    unique_namespace,
)
from casework.app import create_app
from casework.settings import CaseworkSettings
from casework.workdays import Month

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "casework" / "migrations"
OWN = auth("case_worker", sub="cw-own", municipality_code="0180")
STREAM = "/stream"

# A case worker of another municipality: their own lists are empty, our participants 404.
CASE = {**allow(200, "case_worker"), "case_worker_other": 404}
# A placement or statement: the company's rep and the municipality's case workers; the rep of
# another company and a case worker of another municipality are not told it exists.
HOSTED = {**allow(200, "company_rep", "case_worker"), "company_rep_other": 404,
          "case_worker_other": 404}
COMPANY = uuid.uuid4()
EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/participants"): allow(201, "case_worker", "case_worker_other"),
    ("GET", "/participants"): allow(200, "case_worker", "case_worker_other"),
    ("POST", "/participants/search"): allow(200, "case_worker", "case_worker_other"),
    ("GET", "/participants/{participant_id}"): CASE,
    ("DELETE", "/participants/{participant_id}"): {**CASE, "case_worker": 204},
    ("PATCH", "/participants/{participant_id}"): CASE,
    ("POST", "/participants/{participant_id}/transitions"): CASE,
    ("POST", "/participants/{participant_id}/placements"): {**CASE, "case_worker": 201},
    ("POST", "/placements/{placement_id}/end"): CASE,
    ("POST", "/participants/{participant_id}/follow-ups"): {**CASE, "case_worker": 201},
    ("POST", "/participants/{participant_id}/notes"): {**CASE, "case_worker": 201},
    ("GET", "/participants/{participant_id}/timeline"): CASE,
    ("GET", "/participants/{participant_id}/access-log"): allow(200, "auditor"),
    ("GET", "/stats/outcomes"): allow(200, "analyst", "case_worker", "case_worker_other"),
    ("GET", STREAM): allow(200, "case_worker", "case_worker_other"),
    # the individual plan
    ("GET", "/participants/{participant_id}/plan"): CASE,
    ("PUT", "/participants/{participant_id}/plan"): {**CASE, "case_worker": 201},
    ("POST", "/participants/{participant_id}/plan/reviews"): {**CASE, "case_worker": 201},
    ("GET", "/plans"): allow(200, "case_worker", "case_worker_other"),
    # attendance: the host company's rep reports, the municipality reads
    ("GET", "/companies/{company_id}/placements"): {**allow(200, "company_rep"),
                                                    "company_rep_other": 404},
    ("PUT", "/placements/{placement_id}/attendance/{date}"): {**allow(201, "company_rep"),
                                                              "company_rep_other": 404},
    ("GET", "/placements/{placement_id}/attendance"): HOSTED,
    # rates and statements
    ("POST", "/rates"): allow(201, "case_worker", "case_worker_other"),
    ("GET", "/rates"): allow(200, "case_worker", "case_worker_other", "analyst"),
    ("GET", "/statements"): allow(200, "case_worker", "case_worker_other", "company_rep",
                                  "company_rep_other"),
    ("GET", "/statements/{statement_id}"): HOSTED,
    ("GET", "/statements/{statement_id}.csv"): HOSTED,
    ("POST", "/statements/{statement_id}/corrections"): {
        **HOSTED, "company_rep": 201, "case_worker": 201},
    ("GET", "/follow-ups"): allow(200, "case_worker", "case_worker_other"),
    ("GET", "/placements"): allow(200, "case_worker", "case_worker_other"),
    ("GET", "/healthz"): public(),
    ("GET", "/readyz"): public(),
    ("GET", "/metrics"): public(),
    ("GET", "/asyncapi"): public(),
    ("GET", "/openapi.json"): public(),
    ("GET", "/docs"): public(),
    ("GET", "/docs/oauth2-redirect"): public(),
    ("GET", "/redoc"): public(),
}
CALLERS = {
    "case_worker": OWN,
    "case_worker_other": auth("case_worker", sub="cw-other", municipality_code="1480"),
    "registry_officer": auth("registry_officer", sub="officer"),
    "company_rep": auth("company_rep", sub="rep", company_id=str(COMPANY)),
    "company_rep_other": auth("company_rep", sub="rep2", company_id=str(uuid.uuid4())),
    "analyst": auth("analyst", sub="analyst"),
    "auditor": auth("auditor", sub="auditor"),
}


@pytest.fixture(scope="module")
async def app(postgres_url: str, broker_url: str) -> AsyncIterator[FastAPI]:
    namespace = unique_namespace()
    async with fresh_database(postgres_url, "casework_access", MIGRATIONS) as dsn:
        application = create_app(CaseworkSettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            queue_namespace=namespace, follow_up_sweep_interval=0,
            plan_review_sweep_interval=0, statement_sweep_interval=0,
            casework_data_key=DATA_KEY))
        async with serving(application):
            yield application


@pytest.fixture(scope="module")
async def company_id(app: FastAPI) -> str:
    """An active company in casework's read model, as a registry event would put it: the
    company of the `company_rep` caller."""
    cid = COMPANY
    payload = CompanyPayload(
        id=cid, org_number="769000-0001", name="Matrisens Kooperativ",
        legal_form="ekonomisk_forening", municipality_code="0180", county_code="01",
        industries=["cleaning"], training_places=1000, origin="existing", status="active",
        qualifies_as_asf=True, reserved_contract_eligible=True, verification_level="verified")
    async with app.state.runtime.pool.acquire() as conn, conn.transaction():
        await app.state.casework.apply_company(conn, 1, payload)
    return str(cid)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://casework") as c:
        yield c


async def ok(r: httpx.Response, status: int = 200) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json() if r.content else {}
    return body


async def prepare(c: httpx.AsyncClient, method: str, path: str, company_id: str,
                  app: FastAPI) -> tuple[str, dict[str, Any]]:
    """A fresh participant of municipality 0180 in the state the route needs, and the
    request that exercises the route on it."""
    if (method, path) in PLANS_AND_ATTENDANCE:
        return await prepare_plans_and_attendance(c, method, path, company_id, app)
    person = {"given_name": "Matris", "family_name": "Testsson",
              "personal_identity_number": identity_number(), "referral_source": "self"}
    if (method, path) == ("POST", "/participants"):
        return path, {"json": person}
    if path == "/participants/search":
        return path, {"json": {"personal_identity_number": identity_number()}}
    if "{" not in path:
        return path, {}
    pid = (await ok(await c.post("/participants", json=person, headers=OWN), 201))["id"]
    base = f"/participants/{pid}"
    today = date.today().isoformat()
    placement = {"company_id": company_id, "kind": "work_training", "start": today}
    if path.endswith(("placements", "follow-ups")) or path.startswith("/placements"):
        await ok(await c.post(f"{base}/transitions", json={"to": "assessment"}, headers=OWN))
    if path.startswith("/placements"):
        placed = await ok(await c.post(f"{base}/placements", json=placement, headers=OWN), 201)
        return path.replace("{placement_id}", placed["id"]), {"json": {"reason": "completed"}}
    if path.endswith("follow-ups"):
        await ok(await c.post(f"{base}/placements", json=placement, headers=OWN), 201)
        await ok(await c.post(f"{base}/transitions", headers=OWN, json={
            "to": "employed", "employment": {"form": "unsubsidised", "employer_name": "X AB",
                                             "start": today}}))
    if method == "PATCH":
        return path.replace("{participant_id}", pid), {"json": {"phone": "070-000 00 00",
                                                                "version": 1}}
    if method == "DELETE":
        await ok(await c.post(f"{base}/transitions", json={"to": "closed", "exit_reason": "moved"},
                              headers=OWN))
    bodies: dict[str, dict[str, Any]] = {
        "transitions": {"json": {"to": "assessment"}},
        "placements": {"json": placement},
        "follow-ups": {"json": {"still_employed": True}},
        "notes": {"json": {"text": "Samtal genomfört"}},
    }
    return path.replace("{participant_id}", pid), bodies.get(path.rsplit("/", 1)[-1], {})


def _is_plan(path: str) -> bool:
    return path.endswith(("/plan", "/plans")) or "/plan/" in path


PLANS_AND_ATTENDANCE = {(m, p) for m, p in EXPECTED if _is_plan(p) or "attendance" in p
                        or p.startswith(("/rates", "/statements", "/companies"))}
_months = itertools.count(0)
_rate_days = itertools.count(0)


async def prepare_plans_and_attendance(c: httpx.AsyncClient, method: str, path: str,
                                       company_id: str, app: FastAPI
                                       ) -> tuple[str, dict[str, Any]]:
    today = date.today()
    if path == "/rates":
        valid_from = date(2000, 1, 1) + timedelta(days=next(_rate_days))
        return path, {"json": {"kind": "work_training", "unit": "day", "amount_sek": 350,
                               "valid_from": valid_from.isoformat()}} if method == "POST" else {}
    if path in ("/plans", "/statements"):
        return path, {}
    if path == "/companies/{company_id}/placements":
        return path.replace("{company_id}", company_id), {}
    person = {"given_name": "Matris", "family_name": "Testsson",
              "personal_identity_number": identity_number(), "referral_source": "self"}
    pid = (await ok(await c.post("/participants", json=person, headers=OWN), 201))["id"]
    base = f"/participants/{pid}"
    plan = {"participant_involved": True,
            "next_review_date": (today + timedelta(days=7)).isoformat(),
            "goals": [{"text": "Ett mål", "target_date": "2030-01-01"}]}
    if _is_plan(path):
        if method == "PUT":
            return path.replace("{participant_id}", pid), {
                "json": plan, "headers": {"If-None-Match": "*"}}
        await ok(await c.put(f"{base}/plan", json=plan,
                             headers={**OWN, "If-None-Match": "*"}), 201)
        if method == "GET":
            return path.replace("{participant_id}", pid), {}
        return path.replace("{participant_id}", pid), {"headers": {"If-Match": '"1"'}, "json": {
            "outcome": "continue", "next_review_date": (today + timedelta(days=30)).isoformat()}}
    await ok(await c.post(f"{base}/transitions", json={"to": "assessment"}, headers=OWN))
    if "attendance" in path:
        placement = {"company_id": company_id, "kind": "work_training",
                     "start": today.isoformat(), "hours_per_week": 20}
        placed = await ok(await c.post(f"{base}/placements", json=placement, headers=OWN), 201)
        url = path.replace("{placement_id}", placed["id"]).replace("{date}", today.isoformat())
        return url, {"json": {"hours_present": 4}} if method == "PUT" else {}
    # a statement of a month of its own, long past, with this participant's placement in it
    month = Month(2010, 1)
    for _ in range(next(_months)):
        month = month.next()
    placement = {"company_id": company_id, "kind": "work_training",
                 "start": month.first.isoformat(), "hours_per_week": 20}
    placed = await ok(await c.post(f"{base}/placements", json=placement, headers=OWN), 201)
    await ok(await c.post(f"/placements/{placed['id']}/end", headers=OWN,
                          json={"reason": "completed", "end": month.last.isoformat()}))
    [statement] = await app.state.casework.close_month(month, uuid.UUID(company_id))
    url = path.replace("{statement_id}", str(statement.id))
    return url, {"json": {"reason": "rate"}} if method == "POST" else {}


def test_every_route_has_a_row(app: FastAPI) -> None:
    assert api_routes(app) == set(EXPECTED)


CELLS = [(m, p, v) for (m, p) in EXPECTED for v in VARIANTS
         # an open stream never ends; that the right callers get it is shown in
         # services/casework/tests/test_stats_stream_demo.py
         if not (p == STREAM and EXPECTED[(m, p)][v] == 200)]


@pytest.mark.parametrize(("method", "path", "caller"), CELLS,
                         ids=[f"{m} {p} {v}" for m, p, v in CELLS])
async def test_access(client: httpx.AsyncClient, app: FastAPI, company_id: str, method: str,
                      path: str,
                      caller: str) -> None:
    url, kwargs = await prepare(client, method, path, company_id, app)
    headers = {**({} if caller == ANONYMOUS else CALLERS[caller]), **kwargs.pop("headers", {})}
    r = await client.request(method, url, headers=headers, **kwargs)
    assert r.status_code == EXPECTED[(method, path)][caller], r.text
