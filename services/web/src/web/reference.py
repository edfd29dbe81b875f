"""Reference data the pages need from the registry: municipalities and counties (the same
290 for everyone, kept in memory), and the active companies a case worker can place with."""

from __future__ import annotations

from typing import Any

from web.auth import User
from web.clients import Apis

_MUNICIPALITIES: dict[str, dict[str, Any]] = {}


async def municipalities(apis: Apis, token: str) -> dict[str, dict[str, Any]]:
    """code → {code, name, county_code, county_name}; loaded once (no personal data)."""
    if not _MUNICIPALITIES:
        page = await apis.registry.get("/municipalities", token)
        _MUNICIPALITIES.update({m["code"]: m for m in page["items"]})
    return _MUNICIPALITIES


async def counties(apis: Apis, token: str) -> list[tuple[str, str]]:
    seen: dict[str, str] = {}
    for m in (await municipalities(apis, token)).values():
        seen[m["county_code"]] = m["county_name"]
    return sorted(seen.items())


async def municipality_choices(apis: Apis, token: str) -> list[tuple[str, str]]:
    return sorted(((c, f"{m['name']} ({c})") for c, m in
                   (await municipalities(apis, token)).items()), key=lambda x: x[1])


async def active_companies(apis: Apis, user: User, county: str | None = None
                           ) -> list[dict[str, Any]]:
    companies: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await apis.registry.get("/companies", user.token, status="active",
                                       county_code=county, limit=500, cursor=cursor)
        companies.extend(page["items"])
        cursor = page.get("next_cursor")
        if not cursor:
            return companies


async def placement_choices(apis: Apis, user: User, county: str | None) -> dict[str, Any]:
    """Active companies with their free training places, in the case worker's county
    unless another is chosen. Places taken are the active placements casework shows this
    case worker (their municipality's); casework refuses a full company (409) either way."""
    munis = await municipalities(apis, user.token)
    own = munis.get(user.municipality_code or "")
    county = county or (own["county_code"] if own else None)
    companies = await active_companies(apis, user, county)
    choices = []
    for c in companies:
        taken = await apis.casework.get("/participants", user.token, company_id=c["id"],
                                        limit=500)
        free = max(0, int(c.get("training_places") or 0) - len(taken["items"]))
        choices.append({**c, "free_places": free,
                        "municipality_name": munis.get(c["municipality_code"], {}).get("name")})
    return {
        "companies": [c for c in choices if c["free_places"] > 0],
        "full": [c for c in choices if c["free_places"] == 0],
        "county": county, "counties": await counties(apis, user.token),
    }
