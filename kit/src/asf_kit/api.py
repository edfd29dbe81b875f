"""What every service's routes share: the pool dependency, list parameters, versions in
headers, and the problem responses to document."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import Depends, Header, Query, Request, Response

from asf_kit.pagination import MAX_LIMIT, decode_cursor
from asf_kit.problems import ProblemDetail, invalid


def _pool(request: Request) -> asyncpg.Pool:
    pool: asyncpg.Pool = request.app.state.runtime.pool
    return pool


Pool = Annotated[asyncpg.Pool, Depends(_pool)]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT)]
Cursor = Annotated[str | None, Query(description="next_cursor of the previous page")]
IfMatch = Annotated[str | None, Header(description='The version read, e.g. "3"')]


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


def time_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (created_at, id) a time-ordered list's cursor carries."""
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return datetime.fromisoformat(str(key[0])), UUID(str(key[1]))
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e
