"""CSV import: all rows or none, every bad row reported by its number."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx

from registry.imports import IMPORT_COLUMNS

Headers = dict[str, dict[str, str]]


def row(body: dict[str, Any], **overrides: str) -> dict[str, str]:
    r = {
        "org_number": body["org_number"], "name": body["name"], "legal_form": "aktiebolag",
        "municipality_code": "1280", "industries": "cafe_restaurant;catering",
        "description": "Lunchrestaurang", "website": "", "contact_name": "Bo Kontakt",
        "contact_role": "manager", "contact_email": "bo@example.se", "contact_phone": "",
        "workforce_as_of": "2025-12-31", "employees_total": "4", "engaged_total": "10",
        "target_group_engaged": "5", "training_places": "3", "origin": "existing",
        "runs_business": "ja", "integration_purpose": "ja", "participation_form": "agreement",
        "participation_description": "", "reinvests_profits": "ja",
        "independent_of_public_sector": "ja",
    }
    r.update(overrides)
    return r


def to_csv(rows: list[dict[str, str]], columns: list[str] = IMPORT_COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


async def post_csv(client: httpx.AsyncClient, h: dict[str, str], data: bytes) -> httpx.Response:
    return await client.post("/companies/import", content=data,
                             headers={**h, "content-type": "text/csv"})


async def test_import_all_rows(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]]
) -> None:
    rows = [row(body_factory()) for _ in range(3)]
    r = await post_csv(client, headers["officer"], to_csv(rows))
    assert r.status_code == 201, r.text
    assert r.json()["imported"] == 3
    for company_id, source in zip(r.json()["ids"], rows, strict=True):
        c = (await client.get(f"/companies/{company_id}", headers=headers["officer"])).json()
        assert c["org_number"] == source["org_number"]
        assert c["industries"] == ["cafe_restaurant", "catering"]
        assert c["contacts"][0]["email"] == "bo@example.se"
        assert c["status"] == "pending"
        assert c["qualifies_as_asf"] is True


async def test_one_bad_row_imports_nothing_and_every_bad_row_is_named(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
    new_company: Callable[..., Any],
) -> None:
    existing = await new_company()
    good = row(body_factory())
    rows = [
        good,                                                    # line 2
        row(body_factory(), org_number="212000-0142"),           # line 3: public body
        row(body_factory(), municipality_code="9999"),           # line 4
        row(body_factory(), runs_business="kanske"),             # line 5
        row(body_factory(), org_number=good["org_number"]),      # line 6: repeats line 2
        row(body_factory(), org_number=existing["org_number"]),  # line 7: already registered
        row(body_factory()),                                     # line 8: fine
    ]
    r = await post_csv(client, headers["officer"], to_csv(rows))
    assert r.status_code == 422, r.text
    problem = r.json()
    assert problem["detail"].startswith("5 row(s)")
    reported = {(e["row"], e["field"]) for e in problem["rows"]}
    assert reported == {
        (3, "org_number"), (4, "municipality_code"), (5, "criteria.runs_business"),
        (6, "org_number"), (7, "org_number"),
    }
    assert any(e["field"] == "row 3: org_number" for e in problem["errors"])
    q = await client.get("/companies", params={"q": good["name"]}, headers=headers["officer"])
    assert q.json()["items"] == []


async def test_missing_columns_and_empty_files_are_refused(
    client: httpx.AsyncClient, headers: Headers
) -> None:
    r = await post_csv(client, headers["officer"], b"org_number,name\n556036-0793,X\n")
    assert r.status_code == 422
    assert r.json()["errors"][0]["field"] == "header"
    assert "legal_form" in r.json()["errors"][0]["message"]
    r = await post_csv(client, headers["officer"], to_csv([]))
    assert r.status_code == 422
    r = await post_csv(client, headers["officer"], b"\xff\xfe\x00bad")
    assert r.status_code == 422


async def test_only_officers_import(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]]
) -> None:
    r = await post_csv(client, headers["rep"], to_csv([row(body_factory())]))
    assert r.status_code == 403
