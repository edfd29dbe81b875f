"""The public register and the handbook (SPEC 3.1 "Public register"): no token; active
companies and published learning examples only, in their public shapes (`registry.views`).

Every response may be cached for a minute (`Cache-Control: public, max-age=60`) and carries
an `ETag`; a request with a matching `If-None-Match` gets 304 and no body. Every request
counts against its client address's rate limit (429 with `Retry-After`), shared by all
replicas (`Registry.count_public_request`).
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from asf_kit.api import Cursor, Limit, problems
from asf_kit.pagination import DEFAULT_LIMIT, Page
from registry.api import (
    CountyParam,
    IndustryParam,
    MunicipalityParam,
    NameSearch,
    SearchText,
    Service,
)
from registry.learning import CollaborationType
from registry.municipalities import all_municipalities
from registry.service import Registry
from registry.store import CompanyFilter, ExampleFilter
from registry.views import (
    CSV_COLUMNS,
    LICENCE,
    LICENCE_URL,
    PublicCompany,
    PublicLearningExample,
    csv_lines,
    csv_row,
)

CACHE_CONTROL = "public, max-age=60"


def client_address(request: Request) -> str:
    """The caller's address as the server sees it (behind a proxy: the forwarded one, when
    the proxy is trusted through uvicorn's `FORWARDED_ALLOW_IPS`)."""
    return request.client.host if request.client else "unknown"


async def _counted(request: Request, registry: Service) -> None:
    await registry.count_public_request(client_address(request))


_answers: dict[int | str, dict[str, Any]] = {
    **problems(404, 429), 304: {"description": "Not modified (If-None-Match matched)"}}
router = APIRouter(prefix="/public", tags=["public register"], dependencies=[Depends(_counted)],
                   responses=_answers)


def _matches(if_none_match: str | None, etag: str) -> bool:
    """RFC 9110 weak comparison of `If-None-Match` against the current `etag`."""
    if if_none_match is None:
        return False
    if if_none_match.strip() == "*":
        return True
    return etag.removeprefix("W/") in {t.strip().removeprefix("W/")
                                       for t in if_none_match.split(",")}


def _not_modified(etag: str) -> Response:
    return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})


def _cached(request: Request, document: Any) -> Response:
    """JSON with an ETag from its bytes; 304 when the caller has it already."""
    body = orjson.dumps(document)
    etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
    if _matches(request.headers.get("if-none-match"), etag):
        return _not_modified(etag)
    return Response(body, media_type="application/json",
                    headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})


# --- companies ----------------------------------------------------------------------------


@router.get("/companies", response_model=Page[PublicCompany])
async def public_companies(
    request: Request,
    registry: Service,
    q: NameSearch = None,
    municipality_code: MunicipalityParam = None,
    county_code: CountyParam = None,
    industry: IndustryParam = None,
    reserved_contract_eligible: bool | None = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Active companies in name order, public fields only."""
    page = await registry.public_companies(
        CompanyFilter(q=q, municipality_code=municipality_code, county_code=county_code,
                      industry=industry, reserved_contract_eligible=reserved_contract_eligible),
        cursor, limit)
    return _cached(request, page)


@router.get("/companies/{company_id}", response_model=PublicCompany)
async def public_company(company_id: UUID, request: Request, registry: Service) -> Response:
    """One active company; 404 for any other (pending, rejected, deregistered or unknown)."""
    return _cached(request, await registry.public_company(company_id))


class RegisterExport(BaseModel):
    """The whole active register as open data."""

    licence: str
    licence_url: str
    produced_at: datetime
    columns: list[str]
    items: list[PublicCompany]
    count: int


def _export_headers(etag: str, produced_at: datetime, extension: str) -> dict[str, str]:
    stamp = produced_at.strftime("%Y%m%dT%H%M%SZ")
    return {
        "ETag": etag, "Cache-Control": CACHE_CONTROL,
        "Content-Disposition": f'attachment; filename="asf-register-{stamp}.{extension}"',
        "X-Produced-At": produced_at.isoformat(timespec="seconds"),
        "Link": f'<{LICENCE_URL}>; rel="license"',
    }


async def _csv_body(registry: Registry) -> AsyncIterator[bytes]:
    yield csv_lines([], header=True).encode()
    async for batch in registry.public_register():
        yield csv_lines([csv_row(c) for c in batch]).encode()


async def _json_body(registry: Registry, produced_at: datetime) -> AsyncIterator[bytes]:
    head = orjson.dumps({"licence": LICENCE, "licence_url": LICENCE_URL,
                         "produced_at": produced_at, "columns": list(CSV_COLUMNS)})
    yield head[:-1] + b',"items":['
    count = 0
    async for batch in registry.public_register():
        chunk = b",".join(orjson.dumps(c) for c in batch)
        yield (b"," if count else b"") + chunk
        count += len(batch)
    yield b'],"count":' + str(count).encode() + b"}"


async def _export(request: Request, registry: Registry, extension: str,
                  media_type: str) -> Response:
    stamp, produced_at = await registry.open_data_version()
    etag = f'W/"{stamp}"'
    if _matches(request.headers.get("if-none-match"), etag):
        return _not_modified(etag)
    body = _csv_body(registry) if extension == "csv" else _json_body(registry, produced_at)
    return StreamingResponse(body, media_type=media_type,
                             headers=_export_headers(etag, produced_at, extension))


@router.get("/companies.csv", response_class=StreamingResponse, responses={200: {
    "content": {"text/csv": {"schema": {"type": "string"}}},
    "description": "Columns, in this order: " + ", ".join(CSV_COLUMNS)}})
async def register_csv(request: Request, registry: Service) -> Response:
    """The whole active register as CSV (UTF-8, RFC 4180, a header row, the columns in a
    stable order), CC0. When it was produced: `X-Produced-At` and the file name."""
    return await _export(request, registry, "csv", "text/csv; charset=utf-8; header=present")


@router.get("/companies.json", response_class=StreamingResponse, responses={200: {
    "content": {"application/json": {"schema": RegisterExport.model_json_schema(
        ref_template="#/components/schemas/{model}")}}}})
async def register_json(request: Request, registry: Service) -> Response:
    """The whole active register as one JSON document, CC0, with `produced_at`."""
    return await _export(request, registry, "json", "application/json")


# --- the handbook -------------------------------------------------------------------------


@router.get("/learning-examples", response_model=Page[PublicLearningExample])
async def public_learning_examples(
    request: Request,
    registry: Service,
    q: Annotated[SearchText | None, Query(min_length=1, max_length=100,
                                          description="part of the title or summary")] = None,
    collaboration_type: CollaborationType | None = None,
    county_code: CountyParam = None,
    municipality_code: MunicipalityParam = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    """Published learning examples, newest first; no submitter contact."""
    page = await registry.public_learning_examples(
        ExampleFilter(q=q, collaboration_type=collaboration_type, county_code=county_code,
                      municipality_code=municipality_code), cursor, limit)
    return _cached(request, page)


@router.get("/learning-examples/{example_id}", response_model=PublicLearningExample)
async def public_learning_example(example_id: UUID, request: Request,
                                  registry: Service) -> Response:
    return _cached(request, await registry.public_learning_example(example_id))


# --- reference data -----------------------------------------------------------------------


class PublicCountyStats(BaseModel):
    county_code: str
    county_name: str
    companies_active: int
    training_places: int


class PublicStats(BaseModel):
    counties: list[PublicCountyStats]
    totals: PublicCountyStats


@router.get("/stats", response_model=PublicStats)
async def public_stats(request: Request, registry: Service) -> Response:
    """Active companies and their training places per county (the register's front page)."""
    return _cached(request, await registry.public_stats())


class PublicMunicipality(BaseModel):
    code: str
    name: str
    county_code: str
    county_name: str


@router.get("/municipalities", response_model=Page[PublicMunicipality])
async def public_municipalities(request: Request) -> Response:
    """The 290 municipalities with their county, for the register's filters (one page)."""
    return _cached(request, {"items": [vars(m) for m in all_municipalities().values()],
                             "next_cursor": None})
