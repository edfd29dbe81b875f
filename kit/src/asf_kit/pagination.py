"""Opaque keyset cursors for `{"items": [...], "next_cursor": ...}` lists."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any, Generic, Self, TypeVar
from uuid import UUID

import orjson
from pydantic import BaseModel
from starlette.responses import Response

from asf_kit.problems import invalid

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None

    @classmethod
    def of(cls, fetched: list[T], limit: int, key: Callable[[T], Sequence[Any]]) -> Self:
        """The page of `limit + 1` items fetched: the first `limit`, and the cursor after the
        last of them (its `key`) when there is more."""
        items, next_cursor = cut(fetched, limit, key)
        return cls(items=items, next_cursor=next_cursor)


def cut(fetched: list[T], limit: int, key: Callable[[T], Sequence[Any]]
        ) -> tuple[list[T], str | None]:
    """The first `limit` of `limit + 1` items fetched, and the cursor after them (the last
    one's `key`) when there is more: the one way every list pages."""
    items = fetched[:limit]
    more = len(fetched) > limit and bool(items)
    return items, encode_cursor(key(items[-1])) if more else None


def page_response(items: list[Any], next_cursor: str | None) -> Response:
    """A list page from documents already in the API's shape, serialised without models."""
    return Response(orjson.dumps({"items": items, "next_cursor": next_cursor}),
                    media_type="application/json")


def encode_cursor(key: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str | None, arity: int) -> list[Any] | None:
    """The key a cursor carries, or a 422 naming `cursor` when it was not one of ours."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = orjson.loads(raw)
    except (ValueError, orjson.JSONDecodeError) as e:
        raise invalid("cursor", "not a cursor this API returned") from e
    if not isinstance(key, list) or len(key) != arity:
        raise invalid("cursor", "not a cursor this API returned")
    return key


def time_cursor(cursor: str | None) -> tuple[datetime, UUID] | None:
    """The (created_at, id) a time-ordered list's cursor carries."""
    key = decode_cursor(cursor, 2)
    if key is None:
        return None
    try:
        return datetime.fromisoformat(str(key[0])), UUID(str(key[1]))
    except ValueError as e:
        raise invalid("cursor", "not a cursor this API returned") from e
