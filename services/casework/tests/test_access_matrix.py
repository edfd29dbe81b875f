"""Every route × every kind of caller: who is let in (SPEC 2). A new route fails this test
until it is given its row here."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from asf_testing import auth

SOME_ID = str(uuid.uuid4())

# method, path, body, roles let in (beyond them: 403; without a token: 401)
ROUTES: list[tuple[str, str, dict[str, Any] | None, set[str]]] = [
    ("POST", "/participants", {}, {"case_worker"}),
    ("GET", "/participants", None, {"case_worker"}),
    ("POST", "/participants/search", {}, {"case_worker"}),
    ("GET", "/participants/{participant_id}", None, {"case_worker"}),
    ("DELETE", "/participants/{participant_id}", None, {"case_worker"}),
    ("PATCH", "/participants/{participant_id}", {"phone": None}, {"case_worker"}),
    ("POST", "/participants/{participant_id}/transitions", {}, {"case_worker"}),
    ("POST", "/participants/{participant_id}/placements", {}, {"case_worker"}),
    ("POST", "/placements/{placement_id}/end", {}, {"case_worker"}),
    ("POST", "/participants/{participant_id}/follow-ups", {}, {"case_worker"}),
    ("POST", "/participants/{participant_id}/notes", {}, {"case_worker"}),
    ("GET", "/participants/{participant_id}/timeline", None, {"case_worker"}),
    ("GET", "/participants/{participant_id}/access-log", None, {"auditor"}),
    ("GET", "/stats/outcomes", None, {"analyst", "case_worker"}),
    ("GET", "/stream", None, {"case_worker"}),
    ("GET", "/participants/{participant_id}/plan", None, {"case_worker"}),
    ("PUT", "/participants/{participant_id}/plan", {}, {"case_worker"}),
    ("POST", "/participants/{participant_id}/plan/reviews", {}, {"case_worker"}),
    ("GET", "/plans", None, {"case_worker"}),
    ("GET", "/companies/{company_id}/placements", None, {"company_rep"}),
    ("PUT", "/placements/{placement_id}/attendance/{date}", {}, {"company_rep"}),
    ("GET", "/placements/{placement_id}/attendance", None, {"company_rep", "case_worker"}),
    ("POST", "/rates", {}, {"case_worker"}),
    ("GET", "/rates", None, {"analyst", "case_worker"}),
    ("GET", "/statements", None, {"company_rep", "case_worker"}),
    ("GET", "/statements/{statement_id}", None, {"company_rep", "case_worker"}),
    ("GET", "/statements/{statement_id}.csv", None, {"company_rep", "case_worker"}),
    ("POST", "/statements/{statement_id}/corrections", {}, {"company_rep", "case_worker"}),
    ("GET", "/follow-ups", None, {"case_worker"}),
    ("GET", "/placements", None, {"case_worker"}),
]
ROLES = ["case_worker", "registry_officer", "company_rep", "analyst", "auditor"]
OPEN = {"/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect",
        "/redoc", "/asyncapi"}


def test_every_route_has_a_row(env: Any) -> None:
    routes = {(method.upper(), path) for path, item in env.app.openapi()["paths"].items()
              for method in item if path not in OPEN}
    assert routes == {(m, p) for m, p, _, _ in ROUTES}


@pytest.mark.parametrize(("method", "path", "body", "allowed"), ROUTES,
                         ids=[f"{m} {p}" for m, p, _, _ in ROUTES])
async def test_who_is_let_in(client: Any, method: str, path: str, body: dict[str, Any] | None,
                             allowed: set[str]) -> None:
    url = path
    for name in ("participant_id", "placement_id", "company_id", "statement_id"):
        url = url.replace(f"{{{name}}}", SOME_ID)
    url = url.replace("{date}", "2026-01-05")
    r = await client.request(method, url, json=body)
    assert r.status_code == 401
    for role in ROLES:
        if role in allowed and path == "/stream":
            continue  # an open stream never ends; tested in test_stats_stream_demo
        headers = auth(role, sub=f"matrix-{role}", municipality_code="0180",
                       company_id=SOME_ID)
        r = await client.request(method, url, json=body, headers=headers)
        if role in allowed:
            assert r.status_code not in (401, 403, 500), (role, r.status_code, r.text)
        else:
            assert r.status_code == 403, (role, r.status_code)
