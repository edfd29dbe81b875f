"""CSV import: all rows or none, every bad row reported by its number."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from registry.imports import IMPORT_COLUMNS
from registry.service import Registry

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


# --- bounds ----------------------------------------------------------------------------------


@pytest.fixture
def limits(registry_app: FastAPI) -> Registry:
    registry: Registry = registry_app.state.registry
    return registry


async def test_more_rows_than_allowed_are_refused_before_any_is_checked(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
    limits: Registry, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(limits, "import_max_rows", 3)
    rows = [row(body_factory()) for _ in range(4)]
    r = await post_csv(client, headers["officer"], to_csv(rows))
    assert r.status_code == 422
    assert r.json()["errors"] == [{"field": "body", "message": "more than 3 rows; split the file"}]
    r = await post_csv(client, headers["officer"], to_csv(rows[:3]))
    assert r.status_code == 201


async def test_a_file_over_the_size_limit_is_413(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
    limits: Registry, monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = to_csv([row(body_factory()) for _ in range(3)])
    monkeypatch.setattr(limits, "import_max_bytes", len(data) - 1)
    r = await post_csv(client, headers["officer"], data)
    assert r.status_code == 413
    assert str(len(data) - 1) in r.json()["detail"]


async def test_at_most_100_errors_are_listed_with_the_total(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
) -> None:
    rows = [row(body_factory(), municipality_code="9999", origin="unknown")
            for _ in range(150)]
    r = await post_csv(client, headers["officer"], to_csv(rows))
    assert r.status_code == 422
    problem = r.json()
    assert problem["error_count"] == 300
    assert problem["bad_row_count"] == 150
    assert len(problem["errors"]) == len(problem["rows"]) == 100
    assert problem["rows"][0] == {"row": 2, "field": "municipality_code",
                                  "message": problem["rows"][0]["message"]}
    assert problem["rows"][-1]["row"] == 51  # the first hundred, in file order
    assert problem["detail"].startswith("150 row(s) are bad (300 error(s), the first 100")


async def test_control_characters_in_a_cell_name_the_row_and_field(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
) -> None:
    rows = [row(body_factory()), row(body_factory(), description="Kaffe\x1b[2J")]
    r = await post_csv(client, headers["officer"], to_csv(rows))
    assert r.status_code == 422
    [error] = r.json()["rows"]
    assert (error["row"], error["field"]) == (3, "description")
    assert "U+001B" in error["message"]


@pytest.mark.parametrize(("data", "field", "fragment"), [
    (",".join(IMPORT_COLUMNS + [f"x{i}" for i in range(100)]).encode() + b"\n", "header",
     "at most 100"),
    (",".join(IMPORT_COLUMNS).encode() + b'\n"' + b"a" * 200_000 + b"\n", "body",
     "field larger than field limit"),
])
async def test_files_that_are_not_lists_are_refused(
    client: httpx.AsyncClient, headers: Headers, data: bytes, field: str, fragment: str
) -> None:
    r = await post_csv(client, headers["officer"], data)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert error["field"] == field
    assert fragment in error["message"]


async def test_dates_exported_with_a_midnight_time_are_dates_and_other_times_are_refused(
    client: httpx.AsyncClient, headers: Headers, body_factory: Callable[..., dict[str, Any]],
) -> None:
    # A spreadsheet saves a date cell as "2025-12-31 00:00:00"; that is still the day.
    exported = [row(body_factory(), workforce_as_of="2025-12-31 00:00:00"),
                row(body_factory(), workforce_as_of="2025-06-30T00:00")]
    r = await post_csv(client, headers["officer"], to_csv(exported))
    assert r.status_code == 201, r.text
    days = []
    for company_id in r.json()["ids"]:
        c = (await client.get(f"/companies/{company_id}", headers=headers["officer"])).json()
        days.append(c["workforce"]["as_of"])
    assert days == ["2025-12-31", "2025-06-30"]
    # Any other time of day names a moment, not a day: refused, by row and field.
    r = await post_csv(client, headers["officer"], to_csv(
        [row(body_factory()), row(body_factory(), workforce_as_of="2025-12-31 13:45:00")]))
    assert r.status_code == 422, r.text
    [error] = r.json()["rows"]
    assert (error["row"], error["field"]) == (3, "workforce.as_of")
