"""Casework's smoke checks, versioned with its code: ready, a participant referred, read
with their personal data, moved to assessment, listed. tests/operations/
test_rolling_migrations.py runs the previous release's copy of this file against the
previous release's process, before and after the newest migrations are applied.

Plain HTTP (httpx) and the standard library only: it runs against other releases' code.
Keep the keys of the dict it returns: the next release's copy reads them (`earlier`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx


def _identity_number() -> str:
    """A valid personnummer (Luhn over YYMMDDNNN) of someone born 1960-1999."""
    head = f"{random.randint(60, 99):02d}{random.randint(1, 12):02d}{random.randint(1, 28):02d}"
    serial = f"{random.randint(100, 999)}"
    total = 0
    for i, ch in enumerate(head + serial):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"19{head}-{serial}{(10 - total % 10) % 10}"


async def smoke(client: httpx.AsyncClient, base_url: str, auth: Callable[..., dict[str, str]],
                earlier: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
    """Returns what it wrote, for a later run (`earlier`) to read back."""
    assert (await client.get(f"{base_url}/readyz")).status_code == 200
    worker = auth("case_worker", sub="smoke-cw", municipality_code="0180")
    given = f"Rök{uuid.uuid4().hex[:6]}"
    body = {"given_name": given, "family_name": "Testsson",
            "personal_identity_number": _identity_number(), "referral_source": "self"}
    r = await client.post(f"{base_url}/participants", json=body, headers=worker)
    assert r.status_code == 201, f"refer: {r.status_code} {r.text[:500]}"
    pid = r.json()["id"]
    r = await client.get(f"{base_url}/participants/{pid}", headers=worker)
    assert r.status_code == 200 and r.json()["given_name"] == given, \
        f"read: {r.status_code} {r.text[:500]}"
    r = await client.post(f"{base_url}/participants/{pid}/transitions",
                          json={"to": "assessment"}, headers=worker)
    assert r.status_code == 200, f"transition: {r.status_code} {r.text[:500]}"
    r = await client.get(f"{base_url}/participants", params={"stage": "assessment", "limit": 500},
                         headers=worker)
    assert r.status_code == 200, f"list: {r.status_code} {r.text[:500]}"
    assert pid in [p["id"] for p in r.json()["items"]]
    if earlier:
        r = await client.get(f"{base_url}/participants/{earlier['participant_id']}",
                             headers=worker)
        assert r.status_code == 200, f"read earlier: {r.status_code} {r.text[:500]}"
        assert r.json()["given_name"] == earlier["given_name"]
    return {"participant_id": pid, "given_name": given}
