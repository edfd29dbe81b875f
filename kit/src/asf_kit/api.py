"""What every service's routes share: the pool dependency, list parameters, versions in
headers, and the problem responses to document."""

from __future__ import annotations

from typing import Annotated, Any

import asyncpg
from fastapi import Depends, Header, Query, Request, Response

from asf_kit.pagination import MAX_LIMIT
from asf_kit.problems import ProblemDetail, invalid


async def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(
    description="next_cursor of the previous page (only a value this API returned)",
    json_schema_extra={"pattern": r"^[A-Za-z0-9_-]*$"})]
IF_MATCH_PATTERN = r'^(W/)?"?[0-9]+"?$'
IfMatch = Annotated[str | None, Header(description='The version read, e.g. "3"',
                                       json_schema_extra={"pattern": IF_MATCH_PATTERN,
                                                          "minLength": 1})]


def problems(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for the problem documents a route may answer with."""
    return {code: {"model": ProblemDetail} for code in codes}


def set_etag(response: Response, version: int) -> None:
    response.headers["ETag"] = f'"{version}"'


def if_match_version(value: str | None) -> int | None:
    """The version in an `If-Match: "3"` header (weak or strong), or a 422 naming it."""
    if value is None:
        return None
    raw = value.strip().removeprefix("W/").strip('"')
    if not raw.isdigit():
        raise invalid("If-Match", 'must be the version number, e.g. "3"')
    return int(raw)
