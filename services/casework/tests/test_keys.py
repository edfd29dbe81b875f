"""Master-key rotation, on a database of its own (the session's app keeps the first key)."""

from __future__ import annotations

import base64
import uuid
from pathlib import Path
from typing import Any

import pytest

from asf_kit.auth import Principal
from asf_kit.db import create_pool
from asf_kit.problems import Problem
from asf_testing import fresh_database
from casework.crypto import Vault
from casework.inputs import ParticipantIn
from casework.service import Casework

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
OLD = base64.b64encode(bytes(range(32))).decode()
NEW = base64.b64encode(bytes(range(100, 132))).decode()
WORKER = Principal(sub="cw-rotate", name=None, roles=frozenset({"case_worker"}),
                   municipality_code="0180")


async def test_rotation_rewraps_every_key_and_keeps_duplicates_found(
    postgres_url: str, identity_number: Any
) -> None:
    async with fresh_database(postgres_url, "casework_keys", MIGRATIONS) as dsn:
        pool = await create_pool(dsn, 1, 2)
        try:
            old = Casework(lambda: pool, Vault.from_settings(OLD, "k1"), [90])
            numbers = [identity_number() for _ in range(3)]
            made = [await old.refer(ParticipantIn(
                given_name="Rotera", family_name=f"Nyckel{i}", personal_identity_number=n,
                referral_source="self"), WORKER) for i, n in enumerate(numbers)]

            new = Casework(lambda: pool, Vault.from_settings(NEW, "k2", {"k1": OLD}), [90])
            # before rotation the new vault still reads old rows and finds duplicates
            assert (await new.get(made[0].id, WORKER)).family_name == "Nyckel0"
            with pytest.raises(Problem) as e:
                await new.refer(ParticipantIn(
                    given_name="X", family_name="Y", personal_identity_number=numbers[1],
                    referral_source="self"), WORKER)
            assert e.value.status == 409 and e.value.extra["existing_id"] == str(made[1].id)

            assert await new.rotate_keys(batch=2) == 3
            assert await new.rotate_keys() == 0
            only_new = Casework(lambda: pool, Vault.from_settings(NEW, "k2"), [90])
            for i, p in enumerate(made):
                read = await only_new.get(p.id, WORKER)
                assert (read.family_name, read.personal_identity_number) == (
                    f"Nyckel{i}", numbers[i])
            with pytest.raises(Problem) as e:
                await only_new.refer(ParticipantIn(
                    given_name="X", family_name="Y", personal_identity_number=numbers[2],
                    referral_source="self"), WORKER)
            assert e.value.extra["existing_id"] == str(made[2].id)
            async with pool.acquire() as conn:
                ids = {r["key_id"] for r in await conn.fetch(
                    "SELECT key_id FROM participant_keys UNION SELECT key_id FROM participants")}
            assert ids == {"k2"}
            assert uuid.UUID(str(made[0].id))
        finally:
            await pool.close()
