"""Commands an operator runs against the database without the HTTP service."""

from __future__ import annotations

from datetime import date

from asf_kit.db import create_pool
from casework.app import CaseworkService, build_service
from casework.service import now, today
from casework.settings import CaseworkSettings
from casework.workdays import Month, swedish_date


async def _casework(settings: CaseworkSettings) -> CaseworkService:
    pool = await create_pool(settings.database_url, 1, 2)
    return build_service(settings, lambda: pool)


async def sweep(settings: CaseworkSettings, on: date | None = None) -> int:
    """Announce the follow-ups due on or before `on` (today by default)."""
    casework = await _casework(settings)
    try:
        return await casework.sweep_follow_ups(on or today())
    finally:
        await casework.pool.close()


async def rotate(settings: CaseworkSettings) -> int:
    """Move every data key to the current master key."""
    casework = await _casework(settings)
    try:
        return await casework.rotate_keys()
    finally:
        await casework.pool.close()


async def sweep_plan_reviews(settings: CaseworkSettings, on: date | None = None) -> int:
    """Announce the plan reviews due on or before `on` (today in Sweden by default)."""
    casework = await _casework(settings)
    try:
        return await casework.sweep_plan_reviews(on or swedish_date(now()))
    finally:
        await casework.pool.close()


async def close_month(settings: CaseworkSettings, month: Month | None = None,
                      on: date | None = None) -> int:
    """Issue the statements of `month`, or of the month before `on` (today in Sweden by
    default) when that day is on or after the month's first working day."""
    casework = await _casework(settings)
    try:
        if month is not None:
            return len(await casework.close_month(month))
        return len(await casework.close_due_months(on or swedish_date(now())))
    finally:
        await casework.pool.close()


async def reseal(settings: CaseworkSettings) -> tuple[int, int]:
    """Reseal old notes and seal employers' names written in clear (after migration 002)."""
    casework = await _casework(settings)
    try:
        return await casework.reseal()
    finally:
        await casework.pool.close()
