"""How every list pages (`asf_kit.pagination`), without a database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from pydantic import BaseModel

from asf_kit.pagination import Page, cut, decode_cursor, encode_cursor, time_cursor
from asf_kit.problems import Problem

pytestmark = pytest.mark.fast


class Item(BaseModel):
    id: uuid.UUID
    created_at: datetime


def items(n: int) -> list[Item]:
    return [Item(id=uuid.uuid4(), created_at=datetime(2026, 1, 1 + i, tzinfo=UTC))
            for i in range(n)]


def key(i: Item) -> list[str]:
    return [i.created_at.isoformat(), str(i.id)]


def test_one_more_than_the_limit_fetched_means_a_next_page_after_the_last_shown() -> None:
    fetched = items(3)
    page = Page[Item].of(fetched, 2, key)
    assert page.items == fetched[:2]
    assert page.next_cursor is not None
    assert time_cursor(page.next_cursor) == (fetched[1].created_at, fetched[1].id)


@pytest.mark.parametrize("n", [0, 1, 2])
def test_no_more_than_the_limit_means_the_last_page(n: int) -> None:
    fetched = items(n)
    assert cut(fetched, 2, key) == (fetched, None)


def test_a_cursor_not_ours_is_a_422_naming_cursor() -> None:
    for bad in ("not-base64!", encode_cursor([1, 2, 3]), encode_cursor(["x", "y"])):
        with pytest.raises(Problem) as e:
            time_cursor(bad)
        assert e.value.status == 422 and e.value.body()["errors"][0]["field"] == "cursor"
    assert decode_cursor(None, 2) is None and decode_cursor("", 2) is None
