"""Who may do what in notifications: every endpoint × every caller, written down once.
Notifications holds no municipality's or company's own data, so there is no own/other
distinction: analysts manage it, registry officers may also read deliveries.

The table is checked against the app's routes, so a new endpoint without a row fails."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from asf_testing import (
    ANONYMOUS,
    JWT_TEST_SECRET,
    VARIANTS,
    allow,
    api_routes,
    auth,
    fresh_database,
    public,
    serving,
    unique_namespace,
)
from notifications.app import create_app
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "notifications" / "migrations"
ANALYST = auth("analyst", sub="analyst")

EXPECTED: dict[tuple[str, str], dict[str, int]] = {
    ("POST", "/contacts"): allow(201, "analyst"),
    ("GET", "/contacts"): allow(200, "analyst"),
    ("GET", "/contacts/{contact_id}"): allow(200, "analyst"),
    ("PATCH", "/contacts/{contact_id}"): allow(200, "analyst"),
    ("DELETE", "/contacts/{contact_id}"): allow(204, "analyst"),
    ("POST", "/subscriptions"): allow(201, "analyst"),
    ("GET", "/subscriptions"): allow(200, "analyst"),
    ("GET", "/subscriptions/{subscription_id}"): allow(200, "analyst"),
    ("PATCH", "/subscriptions/{subscription_id}"): allow(200, "analyst"),
    ("DELETE", "/subscriptions/{subscription_id}"): allow(204, "analyst"),
    ("GET", "/deliveries"): allow(200, "analyst", "registry_officer"),
    ("GET", "/deliveries/{delivery_id}"): allow(200, "analyst", "registry_officer"),
    ("POST", "/deliveries/{delivery_id}/retry"): allow(200, "analyst"),
    ("GET", "/templates"): allow(200, "analyst"),
    ("POST", "/templates/{name}/preview"): allow(200, "analyst"),
    ("GET", "/templates/{name}/versions"): allow(200, "analyst"),
    ("POST", "/templates/{name}/versions"): allow(201, "analyst"),
    ("POST", "/templates/{name}/versions/{version}/activation"): allow(200, "analyst"),
    ("GET", "/mailcatcher"): allow(200, "analyst"),
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
    "case_worker": auth("case_worker", sub="cw", municipality_code="0180"),
    "case_worker_other": auth("case_worker", sub="cw2", municipality_code="1480"),
    "registry_officer": auth("registry_officer", sub="officer"),
    "company_rep": auth("company_rep", sub="rep", company_id=str(uuid.uuid4())),
    "company_rep_other": auth("company_rep", sub="rep2", company_id=str(uuid.uuid4())),
    "analyst": ANALYST,
    "auditor": auth("auditor", sub="auditor"),
}


@pytest.fixture(scope="module")
async def app(postgres_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
              ) -> AsyncIterator[FastAPI]:
    namespace = unique_namespace()
    async with fresh_database(postgres_url, "notifications_access", MIGRATIONS) as dsn:
        application = create_app(NotificationsSettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            queue_namespace=namespace, digest_enabled=False, smtp_host=None,
            mailcatcher_port=0, mailcatcher_dir=str(tmp_path_factory.mktemp("mail"))))
        async with serving(application):
            yield application


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://notifications") as c:
        yield c


async def prepare(c: httpx.AsyncClient, app: FastAPI, method: str, path: str
                  ) -> tuple[str, dict[str, Any]]:
    contact = {"name": "Matris", "email": f"m{uuid.uuid4().hex[:6]}@example.se",
               "role": "information_officer"}
    if (method, path) == ("POST", "/contacts"):
        return path, {"json": contact}
    if (method, path) == ("POST", "/subscriptions"):
        return path, {"json": {"event_type": "registry.contract.awarded",
                               "role": "information_officer"}}
    if path.startswith("/templates/"):
        url = path.replace("{name}", "learning_example_submitted").replace("{version}", "1")
        if (method, path) == ("POST", "/templates/{name}/versions"):
            text = {"subject": "{{ title }}", "text": "{{ link }}", "html": "<p>{{ link }}</p>"}
            return url, {"json": {"sv": text, "en": text, "note": "matris"}}
        return url, {"json": {"locale": "en"}} if url.endswith("/preview") else {}
    if "{" not in path:
        return path, {}
    r = await c.post("/contacts", json=contact, headers=ANALYST)
    contact_id = r.json()["id"]
    if "{contact_id}" in path:
        body = {"json": {"version": 1, "locale": "en"}} if method == "PATCH" else {}
        return path.replace("{contact_id}", contact_id), body
    if "{subscription_id}" in path:
        r = await c.post("/subscriptions", headers=ANALYST, json={
            "event_type": "registry.contract.awarded", "contact_id": contact_id})
        body = {"json": {"version": 1, "mode": "daily_digest"}} if method == "PATCH" else {}
        return path.replace("{subscription_id}", r.json()["id"]), body
    delivery_id = uuid.uuid4()  # a delivery that failed for good, as the sender leaves it
    await app.state.runtime.pool.execute(
        """INSERT INTO deliveries (id, event_id, event_type, contact_id, recipient, template,
               status, attempts, last_error, message_id)
           VALUES ($1, $2, 'registry.contract.awarded', $3, 'm@example.se', 'contract_awarded',
                   'failed', 1, '550 mailbox unavailable', $4)""",
        delivery_id, uuid.uuid4(), uuid.UUID(contact_id), f"<{delivery_id}@asf-samverkan>")
    return path.replace("{delivery_id}", str(delivery_id)), {}


def test_every_route_has_a_row(app: FastAPI) -> None:
    assert api_routes(app) == set(EXPECTED)


CELLS = [(m, p, v) for (m, p) in EXPECTED for v in VARIANTS]


@pytest.mark.parametrize(("method", "path", "caller"), CELLS,
                         ids=[f"{m} {p} {v}" for m, p, v in CELLS])
async def test_access(client: httpx.AsyncClient, app: FastAPI, method: str, path: str,
                      caller: str) -> None:
    url, kwargs = await prepare(client, app, method, path)
    headers = {} if caller == ANONYMOUS else CALLERS[caller]
    r = await client.request(method, url, headers=headers, **kwargs)
    assert r.status_code == EXPECTED[(method, path)][caller], r.text
