"""The HTTP contracts: the checked-in OpenAPI documents are what the services serve, and
each is compatible with the one released for its service."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from asf_contracts.openapi import OPENAPI_DIR, RELEASED_OPENAPI_DIR, SERVICES, breaking_changes
from asf_testing.openapi import document, drifted

RELEASED = {p.stem: json.loads(p.read_text()) for p in sorted(RELEASED_OPENAPI_DIR.glob("*.json"))}


@pytest.fixture(scope="module")
def current() -> dict[str, dict[str, Any]]:
    return {s: document(s) for s in SERVICES}


def test_checked_in_documents_are_what_the_services_serve() -> None:
    stale = drifted()
    assert stale == [], f"regenerate with `make openapi`: {[p.name for p in stale]}"


def test_every_service_has_a_released_contract() -> None:
    assert sorted(RELEASED) == sorted(SERVICES), "freeze with `python -m asf_testing.openapi "\
        "--release`"
    assert sorted(p.stem for p in OPENAPI_DIR.glob("*.json")) == sorted(SERVICES)


@pytest.mark.parametrize("service", SERVICES)
def test_current_document_keeps_the_released_contract(
        service: str, current: dict[str, dict[str, Any]]) -> None:
    assert breaking_changes(RELEASED[service], current[service]) == []


@pytest.mark.parametrize("service", SERVICES)
def test_every_error_is_a_problem_document(
        service: str, current: dict[str, dict[str, Any]]) -> None:
    wrong = [f"{m.upper()} {p} {status}"
             for p, item in current[service]["paths"].items() for m, op in item.items()
             for status, r in op["responses"].items()
             if status >= "400" and status != "503"
             and list(r.get("content", {})) != ["application/problem+json"]]
    assert wrong == []


# --- the checker itself, on the registry's released document -------------------------------


def _changed(change: Callable[[dict[str, Any]], object]) -> list[str]:
    new = copy.deepcopy(RELEASED["registry"])
    change(new)
    return breaking_changes(RELEASED["registry"], new)


def _schemas(doc: dict[str, Any]) -> dict[str, Any]:
    schemas: dict[str, Any] = doc["components"]["schemas"]
    return schemas


def _register(doc: dict[str, Any]) -> dict[str, Any]:
    op: dict[str, Any] = doc["paths"]["/companies"]["post"]
    return op


def test_checker_allows_additions() -> None:
    def add(doc: dict[str, Any]) -> None:
        _schemas(doc)["CompanyRegistration"]["properties"]["founded_year"] = {"type": "integer"}
        _schemas(doc)["Company"]["properties"]["founded_year"] = {"type": "integer"}
        doc["paths"]["/companies/{company_id}/history"] = {"get": {"responses": {}}}
        _register(doc)["responses"]["418"] = {"description": "new error"}
    assert _changed(add) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda d: d["paths"]["/companies/{company_id}"].pop("patch"),
     "PATCH /companies/{company_id}: removed"),
    (lambda d: _register(d)["responses"].pop("201"), "POST /companies 201: removed"),
    (lambda d: _schemas(d)["CompanyRegistration"]["required"].append("website"),
     "POST /companies body.website: newly required"),
    (lambda d: _schemas(d)["Company"]["properties"].pop("training_places"),
     "POST /companies 201.training_places: removed"),
    (lambda d: _schemas(d)["Company"]["required"].remove("name"),
     "POST /companies 201.name: no longer always there"),
    (lambda d: _schemas(d)["Company"]["properties"].__setitem__(
        "training_places", {"type": "string"}), "201.training_places: type changed"),
    (lambda d: _schemas(d)["CompanyRegistration"]["properties"]["legal_form"].__setitem__(
        "enum", ["aktiebolag"]), "body.legal_form: values no longer accepted"),
    (lambda d: _schemas(d)["CompanyRegistration"]["properties"]["name"].__setitem__(
        "maxLength", 20), "body.name: maxLength tightened to 20"),
    (lambda d: d["paths"]["/companies"]["get"]["parameters"].append(
        {"name": "since", "in": "query", "required": True, "schema": {"type": "string"}}),
     "GET /companies query since: newly required"),
])
def test_checker_refuses_what_breaks_a_client(
        change: Callable[[dict[str, Any]], object], expected: str) -> None:
    found = _changed(change)
    assert any(expected in f for f in found), found
