"""Notes and employers' names at rest: sealed with the participant's key, bound to what they
belong to, gone with an erasure; and `casework reseal`, which brings what was sealed before
up to that."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from datetime import date
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag

from casework.crypto import Vault, WrappedKey

EMPLOYMENT = {"form": "wage_subsidy", "employer_name": "Hemliga Arbetsgivaren AB",
              "start": date.today().isoformat()}


async def _employed(client: Any, refer: Any, move: Any, place: Any, registry: Any,
                    headers: dict[str, str]) -> str:
    company = await registry.active_company(places=5)
    pid: str = (await refer(headers))["id"]
    await move(pid, headers, "assessment")
    assert (await place(pid, headers, company)).status_code == 201
    r = await move(pid, headers, "employed", employment=EMPLOYMENT)
    assert r.status_code == 200, r.text
    assert r.json()["employment"]["employer_name"] is None  # a case carries no personal data
    return pid


async def _timeline(client: Any, pid: str, headers: dict[str, str]) -> list[dict[str, Any]]:
    r = await client.get(f"/participants/{pid}/timeline", headers=headers)
    assert r.status_code == 200, r.text
    items: list[dict[str, Any]] = r.json()["items"]
    return items


async def test_the_employers_name_is_sealed_and_shown_with_the_personal_data_only(
    env: Any, client: Any, refer: Any, move: Any, place: Any, registry: Any, case_worker: Any
) -> None:
    headers = case_worker("0180")
    pid = await _employed(client, refer, move, place, registry, headers)
    async with env.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM employments WHERE participant_id = $1",
                                  uuid.UUID(pid))
    assert row["employer_name"] is None
    assert b"Hemliga" not in bytes(row["employer_sealed"])
    r = await client.get(f"/participants/{pid}", headers=headers)
    assert r.json()["employment"]["employer_name"] == "Hemliga Arbetsgivaren AB"
    r = await client.get("/participants", headers=headers, params={"stage": "employed"})
    assert "Hemliga" not in r.text
    [started] = [i for i in await _timeline(client, pid, headers)
                 if i["kind"] == "employment_started"]
    assert started["details"]["employer_name"] == "Hemliga Arbetsgivaren AB"

    await move(pid, headers, "closed")
    assert (await client.delete(f"/participants/{pid}", headers=headers)).status_code == 204
    async with env.pool.acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM employments WHERE participant_id = $1",
                                  uuid.UUID(pid))
    assert (row["employer_name"], row["employer_sealed"]) == (None, None)
    r = await client.get(f"/participants/{pid}", headers=headers)
    assert r.json()["employment"]["employer_name"] is None
    assert "Hemliga" not in str(await _timeline(client, pid, headers))


async def test_a_note_does_not_open_once_its_flag_or_its_row_is_changed(
    env: Any, client: Any, refer: Any, case_worker: Any
) -> None:
    """Someone with write access to the database cannot show a confidential note to every
    colleague by clearing its flag, nor pass one note's text off as another's."""
    author = case_worker("0180", sub="cw-sealer")
    colleague = case_worker("0180", sub="cw-colleague-2")
    pid = (await refer(author))["id"]
    secret = (await client.post(f"/participants/{pid}/notes", headers=author,
                                json={"text": "bara för mig", "confidential": True})).json()
    plain = (await client.post(f"/participants/{pid}/notes", headers=author,
                               json={"text": "för alla"})).json()
    texts = {i["details"]["note_id"]: i["details"]["text"]
             for i in await _timeline(client, pid, colleague) if i["kind"] == "note"}
    assert texts == {secret["id"]: None, plain["id"]: "för alla"}
    async with env.pool.acquire() as conn:
        await conn.execute("UPDATE notes SET confidential = false WHERE id = $1",
                           uuid.UUID(secret["id"]))
    texts = {i["details"]["note_id"]: i["details"]["text"]
             for i in await _timeline(client, pid, colleague) if i["kind"] == "note"}
    assert texts == {secret["id"]: None, plain["id"]: "för alla"}
    async with env.pool.acquire() as conn:  # one note's sealed text put on another
        await conn.execute(
            "UPDATE notes SET sealed = (SELECT sealed FROM notes WHERE id = $1) WHERE id = $2",
            uuid.UUID(plain["id"]), uuid.UUID(secret["id"]))
    texts = {i["details"]["note_id"]: i["details"]["text"]
             for i in await _timeline(client, pid, author) if i["kind"] == "note"}
    assert texts == {secret["id"]: None, plain["id"]: "för alla"}


async def _cli(env: Any, *args: str) -> str:
    environment = {**os.environ, "DATABASE_URL": env.settings.database_url,
                   "CASEWORK_DATA_KEY": env.settings.casework_data_key, "LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "casework.cli", *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_reseal_moves_what_was_sealed_before(
    env: Any, client: Any, refer: Any, move: Any, place: Any, registry: Any, case_worker: Any
) -> None:
    """Notes bound to the participant only, and employers' names in clear, as migration 002
    finds them: after `casework reseal` each note is bound to its id and flag, each name is
    sealed, and an erased participant's name is gone."""
    headers = case_worker("0180", sub="cw-reseal")
    pid = await _employed(client, refer, move, place, registry, headers)
    erased = await _employed(client, refer, move, place, registry, headers)
    await move(erased, headers, "closed")
    assert (await client.delete(f"/participants/{erased}", headers=headers)).status_code == 204
    vault: Vault = env.casework.vault
    old_notes = [uuid.uuid4(), uuid.uuid4()]
    async with env.pool.acquire() as conn:
        k = await conn.fetchrow("SELECT key_id, wrapped FROM participant_keys "
                                "WHERE participant_id = $1", uuid.UUID(pid))
        key = vault.unwrap(uuid.UUID(pid), WrappedKey(k["key_id"], bytes(k["wrapped"])))
        for note_id, text, confidential in zip(old_notes, ("gammal", "gammal hemlig"),
                                               (False, True), strict=True):
            await conn.execute(
                "INSERT INTO notes (id, participant_id, author, confidential, sealed, "
                "created_at) VALUES ($1, $2, 'cw-reseal', $3, $4, now())",
                note_id, uuid.UUID(pid), confidential,
                vault.seal(key, uuid.UUID(pid), "note", {"text": text}))  # the first way
        await conn.execute("UPDATE employments SET employer_sealed = NULL, "
                           "employer_name = 'Klartext AB' WHERE participant_id = ANY($1)",
                           [uuid.UUID(pid), uuid.UUID(erased)])
    texts = [i["details"]["text"] for i in await _timeline(client, pid, headers)
             if i["kind"] == "note"]
    assert texts == ["gammal", "gammal hemlig"]  # readable meanwhile

    out = await _cli(env, "reseal")
    assert "notes resealed: 2; employer names sealed: 2" in out
    async with env.pool.acquire() as conn:
        notes = await conn.fetch("SELECT id, sealed, sealed_with FROM notes WHERE id = ANY($1)",
                                 old_notes)
        names = {r["participant_id"]: (r["employer_name"], r["employer_sealed"])
                 for r in await conn.fetch("SELECT * FROM employments "
                                           "WHERE participant_id = ANY($1)",
                                           [uuid.UUID(pid), uuid.UUID(erased)])}
    assert {r["sealed_with"] for r in notes} == {2}
    for r in notes:  # no longer opens the first way
        with pytest.raises(InvalidTag):
            vault.open(key, uuid.UUID(pid), "note", bytes(r["sealed"]))
    assert names[uuid.UUID(pid)][0] is None and names[uuid.UUID(pid)][1] is not None
    assert names[uuid.UUID(erased)] == (None, None)
    texts = [i["details"]["text"] for i in await _timeline(client, pid, headers)
             if i["kind"] == "note"]
    assert texts == ["gammal", "gammal hemlig"]
    r = await client.get(f"/participants/{pid}", headers=headers)
    assert r.json()["employment"]["employer_name"] == "Klartext AB"
    assert "notes resealed: 0; employer names sealed: 0" in await _cli(env, "reseal")
