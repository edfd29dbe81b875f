"""The registry's HTTP API for people signed in: parse, call one `Registry` method, respond.
Who reads what is the service's (`registry.views`); the public register is `public_api`."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from asf_kit.api import Cursor, IfMatch, Limit, if_match_version, problems, set_etag
from asf_kit.auth import CurrentPrincipal, Principal, Role, require
from asf_kit.fields import Text
from asf_kit.pagination import DEFAULT_LIMIT, Page, page_response
from registry.domain import (
    Company,
    CompanyPatch,
    CompanyRegistration,
    Contract,
    ContractIn,
    DeregistrationRequest,
    VerificationDecision,
)
from registry.imports import IMPORT_COLUMNS
from registry.learning import (
    LearningExample,
    LearningExampleIn,
    LearningExampleStatus,
    PublicationIn,
)
from registry.municipalities import all_municipalities
from registry.service import Registry
from registry.store import CompanyFilter
from registry.views import PublicCompany, Stats

router = APIRouter()


async def _registry(request: Request) -> Registry:
    registry: Registry = request.app.state.registry
    return registry


Service = Annotated[Registry, Depends(_registry)]
Officer = Annotated[Principal, Depends(require(Role.REGISTRY_OFFICER))]
Registrant = Annotated[Principal, Depends(require(Role.COMPANY_REP, Role.REGISTRY_OFFICER))]
Editor = Annotated[Principal, Depends(require(Role.COMPANY_REP, Role.REGISTRY_OFFICER))]
Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.REGISTRY_OFFICER))]
Analyst = Annotated[Principal, Depends(require(Role.ANALYST))]
MunicipalityParam = Annotated[str | None, Query(pattern=r"^\d{4}$")]
CountyParam = Annotated[str | None, Query(pattern=r"^\d{2}$")]
SearchText = Text
IndustryParam = Annotated[SearchText | None, Query(max_length=40)]
NameSearch = Annotated[SearchText | None, Query(min_length=1, max_length=100,
                                                description="part of the name")]
_errors = problems(403, 404, 409, 412, 428)


def _json(document: object, etag: str | None = None) -> Response:
    return Response(orjson.dumps(document), media_type="application/json",
                    headers={"ETag": etag} if etag else None)


# --- companies ----------------------------------------------------------------------------


@router.post("/companies", status_code=201, tags=["companies"], responses=_errors)
async def register_company(
    body: CompanyRegistration, registry: Service, who: Registrant, response: Response
) -> Company:
    """Register a company; it starts `pending` until a registry officer verifies it."""
    company = await registry.register(body, who)
    set_etag(response, company.version)
    response.headers["Location"] = f"/companies/{company.id}"
    return company


@router.get("/companies", tags=["companies"], response_model=Page[Company | PublicCompany])
async def list_companies(
    registry: Service,
    who: CurrentPrincipal,
    municipality_code: MunicipalityParam = None,
    county_code: CountyParam = None,
    industry: IndustryParam = None,
    status: Literal["pending", "active", "rejected", "deregistered"] | None = None,
    q: NameSearch = None,
    needs_review: Annotated[bool | None, Query(
        description="true: the officers' queue of companies changed after verification")] = None,
    reserved_contract_eligible: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Companies in name order, as the caller may see them: registry officers every status;
    a company's own representative their company too; everybody else active companies
    (case workers and analysts with contacts; others in the public shape)."""
    page = await registry.companies(
        CompanyFilter(municipality_code=municipality_code, county_code=county_code,
                      industry=industry, q=q, status=status, needs_review=needs_review,
                      reserved_contract_eligible=reserved_contract_eligible),
        who, cursor, limit)
    return page_response(page["items"], page["next_cursor"])


@router.get("/companies/{company_id}", tags=["companies"], responses=_errors,
            response_model=Company | PublicCompany)
async def get_company(company_id: UUID, registry: Service, who: CurrentPrincipal) -> Response:
    seen = await registry.company(company_id, who)
    return _json(seen.document, f'"{seen.version}"' if seen.version is not None else None)


@router.patch("/companies/{company_id}", tags=["companies"], responses=_errors)
async def update_company(
    company_id: UUID,
    body: CompanyPatch,
    registry: Service,
    who: Editor,
    response: Response,
    if_match: IfMatch = None,
) -> Company:
    """Change what the company declares. Needs the version read (If-Match or `version`).
    Changing the criteria, workforce, training places or legal form of an active company
    sets its verification back to `self_declared` and puts it in the review queue
    (`needs_review`); when it no longer qualifies as an ASF it goes back to `pending`."""
    company = await registry.update(company_id, body, if_match_version(if_match), who)
    set_etag(response, company.version)
    return company


@router.post("/companies/{company_id}/verification", tags=["companies"], responses=_errors)
async def verify_company(
    company_id: UUID, body: VerificationDecision, registry: Service, who: Officer,
    response: Response,
) -> Company:
    """A registry officer verifies (→ `active`) or rejects (→ `rejected`) a pending company,
    or verifies an active one again (after review, or to renew it)."""
    company = await registry.decide_verification(company_id, body, who)
    set_etag(response, company.version)
    return company


@router.post("/companies/{company_id}/deregistration", tags=["companies"], responses=_errors)
async def deregister_company(
    company_id: UUID, body: DeregistrationRequest, registry: Service, who: Officer,
    response: Response,
) -> Company:
    company = await registry.deregister(company_id, body, who)
    set_etag(response, company.version)
    return company


class ImportResult(BaseModel):
    imported: int
    ids: list[UUID]


@router.post(
    "/companies/import", status_code=201, tags=["companies"], responses=problems(403, 413),
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
        "type": "string", "description": "header: " + ",".join(IMPORT_COLUMNS)}}}}},
)
async def import_companies(request: Request, registry: Service, who: Officer) -> ImportResult:
    """Import a CSV list: every row is checked; one bad row and nothing is imported."""
    ids = await registry.import_csv(await request.body(), who)
    return ImportResult(imported=len(ids), ids=ids)


# --- contracts ----------------------------------------------------------------------------


@router.post("/companies/{company_id}/contracts", status_code=201, tags=["contracts"],
             responses=_errors)
async def award_contract(
    company_id: UUID, body: ContractIn, registry: Service, who: Editor
) -> Contract:
    """Record a contract awarded to the company, reserved (LOU 4 kap. 18 §) or not."""
    return await registry.award_contract(company_id, body, who)


@router.get("/contracts", tags=["contracts"])
async def list_contracts(
    registry: Service,
    _: CurrentPrincipal,
    company_id: UUID | None = None,
    municipality_code: MunicipalityParam = None,
    reserved: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Contract]:
    items, next_cursor = await registry.contracts(company_id, municipality_code, reserved,
                                                  cursor, limit)
    return Page[Contract](items=items, next_cursor=next_cursor)


# --- learning examples --------------------------------------------------------------------


@router.post("/learning-examples", status_code=201, tags=["learning examples"])
async def submit_learning_example(
    body: LearningExampleIn, registry: Service, who: CurrentPrincipal
) -> LearningExample:
    """Submit a lärande exempel; SKR's information officer is told. Any signed-in role."""
    return await registry.submit_learning_example(body, who)


@router.get("/learning-examples", tags=["learning examples"], responses=_errors)
async def list_learning_examples(
    registry: Service,
    _: Reader,
    municipality_code: MunicipalityParam = None,
    status: LearningExampleStatus | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[LearningExample]:
    items, next_cursor = await registry.learning_examples(municipality_code, status, cursor,
                                                          limit)
    return Page[LearningExample](items=items, next_cursor=next_cursor)


@router.get("/learning-examples/{example_id}", tags=["learning examples"], responses=_errors)
async def get_learning_example(example_id: UUID, registry: Service, _: Reader
                               ) -> LearningExample:
    """One learning example, in any status, with the submitter's contact."""
    return await registry.learning_example(example_id)


@router.post("/learning-examples/{example_id}/publication", tags=["learning examples"],
             responses=_errors)
async def decide_publication(
    example_id: UUID, body: PublicationIn, registry: Service, who: Analyst
) -> LearningExample:
    """An analyst publishes a submitted example in the handbook, or declines it; the
    submitter is told by email. Decided once (409 after)."""
    return await registry.decide_publication(example_id, body, who)


# --- reference data and statistics --------------------------------------------------------


class MunicipalityOut(BaseModel):
    code: str
    name: str
    county_code: str
    county_name: str


@router.get("/municipalities", tags=["reference"])
async def list_municipalities(_: CurrentPrincipal) -> Page[MunicipalityOut]:
    """All 290 municipalities with their county, in code order (one page)."""
    return Page[MunicipalityOut](
        items=[MunicipalityOut(**vars(m)) for m in all_municipalities().values()],
        next_cursor=None,
    )


@router.get("/stats", tags=["reference"])
async def stats(registry: Service, _: CurrentPrincipal) -> Stats:
    """Companies, employees and training places per county (employees and places of active
    companies)."""
    return await registry.stats()
