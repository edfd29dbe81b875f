"""Attacks on casework's privacy from outside, over HTTP, against casework on a database of
its own: statistics that would single somebody out, an auditor reading another
municipality's log, a case worker's token without a municipality."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from stdnum import luhn

from asf_testing import (
    DATA_KEY,
    JWT_TEST_SECRET,
    api_routes,
    auth,
    fresh_database,
    serving,
    unique_namespace,
)
from casework.app import create_app
from casework.settings import CaseworkSettings

MIGRATIONS = Path(__file__).resolve().parents[2] / "services" / "casework" / "migrations"
BIG, SMALL = "0990", "0991"  # municipalities with many cases and with two
ANALYST = auth("analyst", sub="analyst-attacker")
_serial = itertools.count(1)


def identity_number() -> str:
    n = next(_serial)
    head = f"6{n % 10}0{(n // 10) % 9 + 1}{10 + n % 18:02d}"
    serial = f"{(n * 41) % 1000:03d}"
    return f"19{head}-{serial}{luhn.calc_check_digit(head + serial)}"


@pytest.fixture(scope="module")
async def served(postgres_url: str, broker_url: str
                 ) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    async with fresh_database(postgres_url, "casework_privacy", MIGRATIONS) as dsn:
        application = create_app(CaseworkSettings(
            database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
            queue_namespace=unique_namespace(), follow_up_sweep_interval=0,
            casework_data_key=DATA_KEY))
        async with serving(application, "http://casework") as c:
            yield application, c


@pytest.fixture(scope="module")
def app(served: tuple[FastAPI, httpx.AsyncClient]) -> FastAPI:
    return served[0]


@pytest.fixture(scope="module")
def client(served: tuple[FastAPI, httpx.AsyncClient]) -> httpx.AsyncClient:
    return served[1]


async def _closed(client: httpx.AsyncClient, app: FastAPI, municipality: str, reason: str,
                  closed_on: datetime) -> str:
    """A case referred and closed with `reason`, its closing moved to `closed_on`."""
    headers = auth("case_worker", sub=f"cw-{municipality}", municipality_code=municipality)
    r = await client.post("/participants", headers=headers, json={
        "given_name": "Anna", "family_name": "Angripen",
        "personal_identity_number": identity_number(), "referral_source": "self"})
    assert r.status_code == 201, r.text
    pid = r.json()["id"]
    r = await client.post(f"/participants/{pid}/transitions", headers=headers,
                          json={"to": "closed", "exit_reason": reason})
    assert r.status_code == 200, r.text
    async with app.state.runtime.pool.acquire() as conn:
        await conn.execute("UPDATE participants SET referred_at = $2 WHERE id = $1",
                           uuid.UUID(pid), datetime(2024, 12, 2, tzinfo=UTC))
        await conn.execute("UPDATE stage_changes SET at = $2 WHERE participant_id = $1 AND "
                           "to_stage = 'closed'", uuid.UUID(pid), closed_on)
    return pid


@pytest.fixture(scope="module")
async def history(client: httpx.AsyncClient, app: FastAPI) -> None:
    """In BIG, five cases closed on sick leave in each of January, February and March
    2025, and one more in April; in SMALL, two in January."""
    for month in (1, 2, 3):
        for _ in range(5):
            await _closed(client, app, BIG, "sick_leave", datetime(2025, month, 10, tzinfo=UTC))
    await _closed(client, app, BIG, "sick_leave", datetime(2025, 4, 10, tzinfo=UTC))
    for _ in range(2):
        await _closed(client, app, SMALL, "sick_leave", datetime(2025, 1, 20, tzinfo=UTC))


async def _outcomes(client: httpx.AsyncClient, **params: str) -> dict[str, Any]:
    r = await client.get("/stats/outcomes", headers=ANALYST, params=params)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_two_overlapping_periods_do_not_give_away_the_month_between_them(
    client: httpx.AsyncClient, history: None
) -> None:
    """January-April minus January-March would be April's one person on sick leave."""
    q1 = await _outcomes(client, municipality_code=BIG, **{"from": "2025-01-01"},
                         to="2025-03-31")
    assert q1["exits_by_reason"] == {"sick_leave": 15} and q1["left_programme"] == 15
    assert q1["suppressed"] is False
    four = await _outcomes(client, municipality_code=BIG, **{"from": "2025-01-01"},
                           to="2025-04-30")
    assert four["exits_by_reason"] == {"sick_leave": None} and four["left_programme"] is None
    assert four["suppressed"] is True
    for start, end in (("2025-04-01", "2025-04-30"), ("2025-02-01", "2025-04-30"),
                       ("2025-03-01", "2025-04-30")):
        o = await _outcomes(client, municipality_code=BIG, **{"from": start}, to=end)
        assert o["exits_by_reason"] == {"sick_leave": None}, (start, end)
    o = await _outcomes(client, municipality_code=BIG, **{"from": "2025-01-01"})
    assert o["exits_by_reason"] == {"sick_leave": None}  # open-ended: April is in it


async def test_periods_finer_than_a_month_are_refused(client: httpx.AsyncClient) -> None:
    for params, field in (({"from": "2025-04-01", "to": "2025-04-09"}, "to"),
                          ({"from": "2025-04-10", "to": "2025-04-30"}, "from"),
                          ({"from": "2025-01-02"}, "from")):
        r = await client.get("/stats/outcomes", headers=ANALYST,
                             params={"municipality_code": BIG, **params})
        assert r.status_code == 422, params
        assert [e["field"] for e in r.json()["errors"]] == [field]


async def test_small_groups_are_null_and_the_total_does_not_give_them_away(
    client: httpx.AsyncClient, history: None
) -> None:
    small = await _outcomes(client, municipality_code=SMALL)
    assert small["exits_by_reason"] == {"sick_leave": None} and small["suppressed"] is True
    assert small["referred"] is None and small["by_stage"]["closed"] is None
    assert small["by_stage"]["assessment"] == 0  # an empty group singles nobody out
    q1 = {"from": "2025-01-01", "to": "2025-03-31"}
    assert (await _outcomes(client, municipality_code=BIG, **q1))["left_programme"] == 15
    everywhere = await _outcomes(client, **q1)  # 17 would be 15 + SMALL's 2
    assert everywhere["left_programme"] is None and everywhere["suppressed"] is True
    assert "Angripen" not in str(everywhere)


async def test_an_auditor_reads_only_their_own_municipalitys_log_and_is_logged(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    pid = await _closed(client, app, BIG, "moved", datetime(2025, 5, 5, tzinfo=UTC))
    url = f"/participants/{pid}/access-log"
    other = auth("auditor", sub="auditor-elsewhere", municipality_code=SMALL)
    r = await client.get(url, headers=other)
    assert r.status_code == 404 and pid not in r.text
    own = auth("auditor", sub="auditor-here", municipality_code=BIG)
    assert (await client.get(url, headers=own)).status_code == 200
    national = auth("auditor", sub="auditor-national")
    r = await client.get(url, headers=national)
    assert r.status_code == 200
    actors = [(e["actor"], e["action"]) for e in r.json()["items"]]
    assert ("auditor-here", "access_log") in actors
    assert ("auditor-elsewhere", "access_log") not in actors  # refused: nothing was read
    r = await client.get(url, headers=own)
    assert ("auditor-national", "access_log") in [(e["actor"], e["action"])
                                                  for e in r.json()["items"]]


async def test_a_case_workers_token_without_a_municipality_is_refused_everywhere(
    client: httpx.AsyncClient, app: FastAPI
) -> None:
    nowhere = auth("case_worker", sub="cw-nowhere")
    some = str(uuid.uuid4())
    bodies: dict[str, Any] = {
        "/participants": {"given_name": "Ingen", "family_name": "Kommun",
                          "personal_identity_number": identity_number(),
                          "referral_source": "self"},
        "/participants/search": {"personal_identity_number": identity_number()},
    }
    async with app.state.runtime.pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM participants")
    tried = 0
    for method, path in sorted(api_routes(app)):
        if method not in ("GET", "POST", "PATCH", "PUT", "DELETE") or path.startswith(
                ("/healthz", "/readyz", "/metrics", "/asyncapi", "/openapi", "/docs",
                 "/redoc")) or path.endswith("/access-log"):
            continue
        url = path.replace("{participant_id}", some).replace("{placement_id}", some)
        r = await client.request(method, url, headers={**nowhere, "If-Match": '"1"'},
                                 json=bodies.get(path, {} if method != "GET" else None))
        assert r.status_code == 403, (method, path, r.status_code, r.text)
        tried += 1
    assert tried >= 15
    async with app.state.runtime.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM participants") == before
