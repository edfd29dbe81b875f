"""The registry's HTTP API: parse, call the service, respond."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from asf_kit.api import (
    Cursor,
    IfMatch,
    Limit,
    Pool,
    if_match_version,
    problems,
    set_etag,
    time_cursor,
)
from asf_kit.auth import CurrentPrincipal, Principal, Role, require
from asf_kit.pagination import (
    DEFAULT_LIMIT,
    Page,
    decode_cursor,
    encode_cursor,
    page_response,
)
from asf_kit.problems import invalid, not_found
from registry import service, store
from registry.domain import (
    Company,
    CompanyPatch,
    CompanyRegistration,
    Contract,
    ContractIn,
    DeregistrationRequest,
    LearningExample,
    LearningExampleIn,
    VerificationDecision,
)
from registry.municipalities import all_municipalities, counties

router = APIRouter()


Officer = Annotated[Principal, Depends(require(Role.REGISTRY_OFFICER))]
Registrant = Annotated[Principal, Depends(require(Role.COMPANY_REP, Role.REGISTRY_OFFICER))]
Editor = Annotated[Principal, Depends(require(Role.COMPANY_REP, Role.REGISTRY_OFFICER))]
Reader = Annotated[Principal, Depends(require(Role.ANALYST, Role.REGISTRY_OFFICER))]
_errors = problems(403, 404, 409, 412, 428)


# --- companies ----------------------------------------------------------------------------


@router.post("/companies", status_code=201, tags=["companies"], responses=_errors)
async def register_company(
    body: CompanyRegistration, pool: Pool, who: Registrant, response: Response
) -> Company:
    """Register a company; it starts `pending` until a registry officer verifies it."""
    company = await service.register(pool, body, who)
    set_etag(response, company.version)
    response.headers["Location"] = f"/companies/{company.id}"
    return company


@router.get("/companies", tags=["companies"], response_model=Page[Company])
async def list_companies(
    pool: Pool,
    _: CurrentPrincipal,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    county_code: Annotated[str | None, Query(pattern=r"^\d{2}$")] = None,
    industry: Annotated[str | None, Query(max_length=40)] = None,
    status: Literal["pending", "active", "rejected", "deregistered"] | None = None,
    q: Annotated[str | None, Query(min_length=1, max_length=100,
                                   description="part of the name")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    key = decode_cursor(cursor, 2)
    after = None
    if key is not None:
        try:
            after = (str(key[0]), UUID(str(key[1])))
        except ValueError as e:
            raise invalid("cursor", "not a cursor this API returned") from e
    async with pool.acquire() as conn:
        items = await store.list_companies(
            conn, municipality_code=municipality_code, county_code=county_code,
            industry=industry, status=status, q=q, after=after, limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    last = items[-1] if items else None
    return page_response(
        items, encode_cursor([last["name"], last["id"]]) if more and last else None
    )


@router.get("/companies/{company_id}", tags=["companies"], responses=_errors,
            response_model=Company)
async def get_company(company_id: UUID, pool: Pool, _: CurrentPrincipal) -> Response:
    async with pool.acquire() as conn:
        doc = await store.get_company_document(conn, company_id)
    if doc is None:
        raise not_found("company")
    return Response(orjson.dumps(doc), media_type="application/json",
                    headers={"ETag": f'"{doc["version"]}"'})


@router.patch("/companies/{company_id}", tags=["companies"], responses=_errors)
async def update_company(
    company_id: UUID,
    body: CompanyPatch,
    pool: Pool,
    who: Editor,
    response: Response,
    if_match: IfMatch = None,
) -> Company:
    """Change what the company declares. Needs the version read (If-Match or `version`)."""
    company = await service.update(pool, company_id, body, if_match_version(if_match), who)
    set_etag(response, company.version)
    return company


@router.post("/companies/{company_id}/verification", tags=["companies"], responses=_errors)
async def verify_company(
    company_id: UUID, body: VerificationDecision, pool: Pool, who: Officer, response: Response
) -> Company:
    """A registry officer verifies (→ `active`) or rejects (→ `rejected`) a pending company."""
    company = await service.decide_verification(pool, company_id, body, who)
    set_etag(response, company.version)
    return company


@router.post("/companies/{company_id}/deregistration", tags=["companies"], responses=_errors)
async def deregister_company(
    company_id: UUID, body: DeregistrationRequest, pool: Pool, who: Officer, response: Response
) -> Company:
    company = await service.deregister(pool, company_id, body, who)
    set_etag(response, company.version)
    return company


class ImportResult(BaseModel):
    imported: int
    ids: list[UUID]


@router.post(
    "/companies/import", status_code=201, tags=["companies"], responses=_errors,
    openapi_extra={"requestBody": {"required": True, "content": {"text/csv": {"schema": {
        "type": "string", "description": "header: " + ",".join(service.IMPORT_COLUMNS)}}}}},
)
async def import_companies(request: Request, pool: Pool, who: Officer) -> ImportResult:
    """Import a CSV list: every row is checked; one bad row and nothing is imported."""
    raw = await request.body()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise invalid("body", "the CSV must be UTF-8") from e
    companies = await service.import_csv(pool, text, who)
    return ImportResult(imported=len(companies), ids=[c.id for c in companies])


# --- contracts ----------------------------------------------------------------------------


@router.post("/companies/{company_id}/contracts", status_code=201, tags=["contracts"],
             responses=_errors)
async def award_contract(
    company_id: UUID, body: ContractIn, pool: Pool, who: Editor
) -> Contract:
    """Record a contract awarded to the company, reserved (LOU 4 kap. 18 §) or not."""
    return await service.award_contract(pool, company_id, body, who)


@router.get("/contracts", tags=["contracts"])
async def list_contracts(
    pool: Pool,
    _: CurrentPrincipal,
    company_id: UUID | None = None,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    reserved: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[Contract]:
    async with pool.acquire() as conn:
        items = await store.list_contracts(
            conn, company_id=company_id, municipality_code=municipality_code,
            reserved=reserved, after=time_cursor(cursor), limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return Page[Contract](
        items=items,
        next_cursor=encode_cursor([items[-1].created_at.isoformat(), str(items[-1].id)])
        if more else None,
    )


# --- learning examples --------------------------------------------------------------------


@router.post("/learning-examples", status_code=201, tags=["learning examples"])
async def submit_learning_example(
    body: LearningExampleIn, pool: Pool, who: CurrentPrincipal
) -> LearningExample:
    """Submit a lärande exempel; SKR's information officer is told. Any signed-in role."""
    return await service.submit_learning_example(pool, body, who)


@router.get("/learning-examples", tags=["learning examples"], responses=_errors)
async def list_learning_examples(
    pool: Pool,
    _: Reader,
    municipality_code: Annotated[str | None, Query(pattern=r"^\d{4}$")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[LearningExample]:
    async with pool.acquire() as conn:
        items = await store.list_learning_examples(
            conn, municipality_code=municipality_code, after=time_cursor(cursor),
            limit=limit + 1,
        )
    more = len(items) > limit
    items = items[:limit]
    return Page[LearningExample](
        items=items,
        next_cursor=encode_cursor([items[-1].created_at.isoformat(), str(items[-1].id)])
        if more else None,
    )


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


class CountyStats(BaseModel):
    county_code: str
    county_name: str
    companies_active: int
    companies_pending: int
    companies_deregistered: int
    companies_rejected: int
    employees: int
    training_places: int


class Stats(BaseModel):
    counties: list[CountyStats]
    totals: CountyStats


@router.get("/stats", tags=["reference"])
async def stats(pool: Pool, _: CurrentPrincipal) -> Stats:
    """Companies, employees and training places per county (employees and places of active
    companies)."""
    async with pool.acquire() as conn:
        rows = {r["county_code"]: r for r in await store.stats_by_county(conn)}
    per_county = []
    for code, name in sorted(counties().items()):
        r = rows.get(code)
        per_county.append(CountyStats(
            county_code=code, county_name=name,
            companies_active=r["active"] if r else 0,
            companies_pending=r["pending"] if r else 0,
            companies_deregistered=r["deregistered"] if r else 0,
            companies_rejected=r["rejected"] if r else 0,
            employees=r["employees"] if r else 0,
            training_places=r["training_places"] if r else 0,
        ))
    totals = CountyStats(
        county_code="", county_name="Sverige",
        **{f: sum(getattr(c, f) for c in per_county) for f in (
            "companies_active", "companies_pending", "companies_deregistered",
            "companies_rejected", "employees", "training_places")},
    )
    return Stats(counties=per_county, totals=totals)


