"""A frontend generated from the OpenAPI documents works: openapi-python-client generates a
typed client for each service from `contracts/openapi/` (into a temporary folder; nothing is
committed), with warnings as errors, since a schema the generator cannot read is a defect of
the schema. Then one journey runs through those clients alone, against the registry and
casework running as their own processes: a company is registered and verified, a participant
is referred, placed there and employed."""

from __future__ import annotations

import importlib
import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from asf_contracts.openapi import OPENAPI_DIR, SERVICES
from asf_contracts.topology import ServiceQueues
from asf_testing import (
    DATA_KEY,
    delete_queues,
    eventually,
    fresh_database,
    identity_number,
    org_number,
    service_process,
    token,
    unique_namespace,
)

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def generate(service: str, into: Path) -> None:
    config = into / f"{service}.yaml"
    # the CSV import's body is bytes to the client (the generator knows no text/csv)
    config.write_text(f"package_name_override: {service}_client\n"
                      f"project_name_override: {service}-client\n"
                      "content_type_overrides:\n  text/csv: application/octet-stream\n")
    generator = shutil.which("openapi-python-client", path=str(BIN)) or "openapi-python-client"
    result = subprocess.run(
        [generator, "generate", "--path", str(OPENAPI_DIR / f"{service}.json"), "--meta",
         "none", "--config", str(config), "--output-path", str(into / f"{service}_client"),
         "--fail-on-warning"],
        capture_output=True, text=True, timeout=300, check=False,
        env={**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


@pytest.fixture(scope="module")
def clients(tmp_path_factory: pytest.TempPathFactory) -> dict[str, ModuleType]:
    into = tmp_path_factory.mktemp("clients")
    for service in SERVICES:
        generate(service, into)
    sys.path.insert(0, str(into))
    try:
        return {s: importlib.import_module(f"{s}_client") for s in SERVICES}
    finally:
        sys.path.remove(str(into))


def call(client: ModuleType, tag: str, operation: str) -> Any:
    """The generated `asyncio_detailed` of an operation, by its tag and operation id."""
    return importlib.import_module(f"{client.__name__}.api.{tag}.{operation}").asyncio_detailed


def model(client: ModuleType, name: str) -> Any:
    return getattr(importlib.import_module(f"{client.__name__}.models"), name)


@pytest.fixture(scope="module")
async def urls(postgres_url: str, broker_url: str, tmp_path_factory: pytest.TempPathFactory
               ) -> AsyncIterator[dict[str, str]]:
    logs = tmp_path_factory.mktemp("logs")
    namespace = unique_namespace()
    common = {"BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace,
              "RELAY_POLL_INTERVAL": "0.2"}
    async with (
        fresh_database(postgres_url, "clients_registry",
                       ROOT / "services/registry/migrations") as registry_db,
        fresh_database(postgres_url, "clients_casework",
                       ROOT / "services/casework/migrations") as casework_db,
        service_process("registry.cli", {**common, "DATABASE_URL": registry_db,
                                         "VERIFICATION_SWEEP_INTERVAL": "0"},
                        logs / "registry.log") as registry,
        service_process("casework.cli", {
            **common, "DATABASE_URL": casework_db, "CASEWORK_DATA_KEY": DATA_KEY,
            "FOLLOW_UP_SWEEP_INTERVAL": "0", "PLAN_REVIEW_SWEEP_INTERVAL": "0",
            "STATEMENT_SWEEP_INTERVAL": "0"}, logs / "casework.log") as casework,
    ):
        yield {"registry": registry.base_url, "casework": casework.base_url}
    for service in ("registry", "casework"):
        await delete_queues(broker_url, ServiceQueues(service=f"{namespace}{service}"))


async def test_the_journey_through_generated_clients(
        clients: dict[str, ModuleType], urls: dict[str, str]) -> None:
    reg, cw = clients["registry"], clients["casework"]

    def signed_in(client: ModuleType, service: str, *roles: str, **claims: Any) -> Any:
        return client.AuthenticatedClient(base_url=urls[service], raise_on_unexpected_status=True,
                                          token=token(list(roles), sub=f"{roles[0]}-gen",
                                                      **claims))

    rep = signed_in(reg, "registry", "company_rep")
    officer = signed_in(reg, "registry", "registry_officer")
    case_worker = signed_in(cw, "casework", "case_worker", municipality_code="0180")

    # a company is registered (typed models, from the document's schemas)
    registration = model(reg, "CompanyRegistration").from_dict({
        "org_number": org_number(), "name": "Kooperativet Genererad Klient",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180",
        "industries": ["gardening"], "training_places": 3, "origin": "founded",
        "contacts": [{"name": "Kim Ek", "role": "manager", "email": "kim@klient.example.se"}],
        "workforce": {"as_of": "2026-10-01", "employees_total": 5, "engaged_total": 12,
                      "target_group_engaged": 7},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True}})
    r = await call(reg, "companies", "register_company")(client=rep, body=registration)
    assert r.status_code == 201, r.content
    company = r.parsed
    assert isinstance(company, model(reg, "Company"))
    assert company.status.value == "pending" and company.qualifies_as_asf is True

    # ... and verified by a registry officer
    decision = model(reg, "VerificationDecision").from_dict({"decision": "verified"})
    r = await call(reg, "companies", "verify_company")(company.id, client=officer, body=decision)
    assert r.status_code == 200, r.content
    assert r.parsed.status.value == "active"
    assert r.parsed.verification.level.value == "verified"

    # a participant is referred and assessed
    referral = model(cw, "ParticipantIn").from_dict({
        "given_name": "Greta", "family_name": "Genererad",
        "personal_identity_number": identity_number(), "referral_source": "social_services"})
    r = await call(cw, "participants", "refer")(client=case_worker, body=referral)
    assert r.status_code == 201, r.content
    participant = r.parsed
    assert isinstance(participant, model(cw, "ParticipantView"))
    transition = call(cw, "cases", "transition")
    r = await transition(participant.id, client=case_worker,
                         body=model(cw, "TransitionIn").from_dict({"to": "assessment"}))
    assert r.status_code == 200, r.content

    # placed at the company, once casework has heard of its verification through the broker
    placement = model(cw, "PlacementIn").from_dict({
        "company_id": str(company.id), "kind": "work_training",
        "start": date.today().isoformat(), "hours_per_week": 20})
    start_placement = call(cw, "cases", "start_placement")

    async def placed() -> Any:
        r = await start_placement(participant.id, client=case_worker, body=placement)
        return r.parsed if r.status_code == 201 else None

    started = await eventually(placed, "a placement at the verified company")
    assert isinstance(started, model(cw, "Placement"))
    assert started.company_id == company.id

    # and employed by it
    employed = model(cw, "TransitionIn").from_dict({
        "to": "employed", "employment": {"form": "wage_subsidy",
                                         "employer_company_id": str(company.id),
                                         "start": date.today().isoformat()}})
    r = await transition(participant.id, client=case_worker, body=employed)
    assert r.status_code == 200, r.content
    r = await call(cw, "participants", "get_participant")(participant.id, client=case_worker)
    assert r.status_code == 200, r.content
    assert r.parsed.stage.value == "employed"

    # a refusal reaches the generated client as the problem document the schema promises
    r = await transition(participant.id, client=case_worker,
                         body=model(cw, "TransitionIn").from_dict({"to": "referred"}))
    assert r.status_code == 409
    assert isinstance(r.parsed, model(cw, "ProblemDetail"))
    assert r.parsed.status == 409
