"""The unit of work and optimistic concurrency every service layer uses.

A use case loads, lets the domain decide, and saves in one transaction; the events the
decision causes go to the outbox in that same transaction:

    async with unit_of_work(pool) as uow:
        company = await store.get_company(uow.conn, company_id, for_update=True)
        changed = company.verify(...)
        await store.update_company(uow.conn, changed)
        uow.publish(company_event(ev.COMPANY_VERIFIED, changed))

When the block raises, nothing is written: neither the change nor its events.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from asf_contracts import Envelope
from asf_kit.db import Conn
from asf_kit.outbox import add_events, collecting, hand_over
from asf_kit.problems import Problem, invalid


class UnitOfWork:
    """One transaction: the connection it runs on and the events it will publish."""

    def __init__(self, conn: Conn) -> None:
        self.conn = conn
        self.events: list[Envelope] = []

    def publish(self, *events: Envelope) -> None:
        """Publish with the commit: the events reach the outbox in this transaction."""
        self.events.extend(events)

    async def flush(self) -> None:
        """Write the events collected so far now rather than just before the commit: before
        taking a lock that is held until the commit, so the outbox's round trip is not made
        while others wait for it."""
        events, self.events = self.events, []
        await add_events(self.conn, events)


@asynccontextmanager
async def unit_of_work(pool: asyncpg.Pool) -> AsyncIterator[UnitOfWork]:
    """A transaction on a pooled connection; collected events are written before commit and
    handed to the relay right after it (see `asf_kit.outbox`)."""
    async with pool.acquire() as conn:
        with collecting(pool) as events:
            async with conn.transaction():
                uow = UnitOfWork(conn)
                yield uow
                if uow.events:
                    await add_events(conn, uow.events)
        hand_over(events)


def expected_version(if_match: int | None, body_version: int | None) -> int:
    """The version the caller read, from `If-Match` or `version` in the body (428 when
    neither, 422 when they differ)."""
    if if_match is not None and body_version is not None and if_match != body_version:
        raise invalid("version", "differs from If-Match")
    expected = if_match if if_match is not None else body_version
    if expected is None:
        raise Problem(428, "Precondition required",
                      "send the version you read, as If-Match or as version in the body",
                      slug="version-required")
    return expected


def check_version(what: str, current: int, expected: int) -> None:
    """A 412 naming the current version when the caller's is stale."""
    if current != expected:
        raise Problem(
            412, "Precondition failed",
            f"the {what} has changed since version {expected}; it is at version {current}. "
            "Read it again and reapply your change.",
            slug="stale-version", current_version=current,
        )
