"""Commands an operator runs against the database without the HTTP service."""

from __future__ import annotations

from datetime import date

from asf_kit.db import create_pool
from casework.crypto import Vault
from casework.service import Casework, today
from casework.settings import CaseworkSettings


async def _casework(settings: CaseworkSettings) -> Casework:
    pool = await create_pool(settings.database_url, 1, 2)
    vault = Vault.from_settings(settings.casework_data_key, settings.casework_data_key_id,
                                settings.casework_previous_data_keys)
    return Casework(lambda: pool, vault, settings.follow_up_offsets_days)


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


async def reseal(settings: CaseworkSettings) -> tuple[int, int]:
    """Reseal old notes and seal employers' names written in clear (after migration 002)."""
    casework = await _casework(settings)
    try:
        return await casework.reseal()
    finally:
        await casework.pool.close()
