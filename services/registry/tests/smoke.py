"""The registry's smoke checks, versioned with its code: ready, a company registered, read,
found and changed. tests/operations/test_rolling_migrations.py runs the previous release's
copy of this file against the previous release's process, before and after the newest
migrations are applied, so keep it to what every release must still do.

Plain HTTP (httpx) and the standard library only: it runs against other releases' code.
Keep the keys of the dict it returns: the next release's copy reads them (`earlier`).
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

import httpx


def _org_number() -> str:
    body = [7, random.randint(0, 9), random.randint(3, 9)] + \
        [random.randint(0, 9) for _ in range(6)]
    total = 0
    for i, d in enumerate(reversed(body)):
        d = d * 2 if i % 2 == 0 else d
        total += d - 9 if d > 9 else d
    digits = "".join(map(str, body)) + str((10 - total % 10) % 10)
    return f"{digits[:6]}-{digits[6:]}"


async def smoke(client: httpx.AsyncClient, base_url: str, auth: Callable[..., dict[str, str]],
                earlier: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
    """Returns what it wrote, for a later run (`earlier`) to read back."""
    assert (await client.get(f"{base_url}/readyz")).status_code == 200
    rep = auth("company_rep", sub=f"smoke-rep-{uuid.uuid4().hex[:8]}")
    officer = auth("registry_officer", sub="smoke-officer")
    name = f"Röktest Ekonomisk Förening {uuid.uuid4().hex[:8]}"
    body = {
        "org_number": _org_number(), "name": name, "legal_form": "ekonomisk_forening",
        "municipality_code": "0180", "industries": ["cleaning"], "training_places": 2,
        "origin": "existing",
        "contacts": [{"name": "Rök Test", "role": "manager", "email": "smoke@example.se"}],
        "workforce": {"as_of": "2026-01-01", "employees_total": 2, "engaged_total": 5,
                      "target_group_engaged": 3},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    }
    r = await client.post(f"{base_url}/companies", json=body, headers=rep)
    assert r.status_code == 201, f"register: {r.status_code} {r.text[:500]}"
    company = r.json()
    r = await client.get(f"{base_url}/companies/{company['id']}", headers=officer)
    assert r.status_code == 200, f"read: {r.status_code} {r.text[:500]}"
    assert r.json()["name"] == name
    r = await client.patch(f"{base_url}/companies/{company['id']}",
                           json={"description": "Röktest"},
                           headers={**officer, "If-Match": f'"{r.json()["version"]}"'})
    assert r.status_code == 200, f"change: {r.status_code} {r.text[:500]}"
    r = await client.get(f"{base_url}/companies", params={"q": name}, headers=officer)
    assert r.status_code == 200, f"list: {r.status_code} {r.text[:500]}"
    assert company["id"] in [c["id"] for c in r.json()["items"]]
    if earlier:
        r = await client.get(f"{base_url}/companies/{earlier['company_id']}", headers=officer)
        assert r.status_code == 200, f"read earlier: {r.status_code} {r.text[:500]}"
        assert r.json()["name"] == earlier["name"]
    return {"company_id": company["id"], "name": name}
