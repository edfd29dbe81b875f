"""Demo companies for `make run`: a dozen realistic ASFs across several counties.

Fictional names and numbers; the organisation numbers are valid (Luhn) but made up.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from stdnum import luhn

from asf_kit.auth import Principal
from asf_kit.db import create_pool
from registry.domain import CompanyRegistration, DeregistrationRequest, VerificationDecision
from registry.service import Registry
from registry.settings import RegistrySettings

OFFICER = Principal(sub="demo-registry-officer", name="Demo Officer",
                    roles=frozenset({"registry_officer"}))


def org_number(first_nine: str) -> str:
    digits = first_nine + luhn.calc_check_digit(first_nine)
    return f"{digits[:6]}-{digits[6:]}"


# name, first nine digits, legal form, municipality, industries, employees, engaged,
# target group, places, origin, status
COMPANIES: list[tuple[str, str, str, str, list[str], int, int, int, int, str, str]] = [
    ("Returpunkten Ekonomisk Förening", "769612345", "ekonomisk_forening", "0180",
     ["second_hand", "recycling"], 14, 40, 28, 12, "existing", "active"),
    ("Café Gemenskap i Göteborg", "769623456", "ekonomisk_forening", "1480",
     ["cafe_restaurant", "catering"], 9, 22, 15, 8, "founded", "active"),
    ("Malmö Cykelverkstad AB", "559012345", "aktiebolag", "1280",
     ["recycling", "other"], 6, 18, 11, 6, "existing", "active"),
    ("Trädgårdsgruppen i Uppsala", "802412345", "ideell_forening", "0380",
     ["gardening"], 5, 16, 12, 10, "municipal_spinoff", "active"),
    ("Tvätteriet Umeå Ekonomisk Förening", "769634567", "ekonomisk_forening", "2480",
     ["laundry", "cleaning"], 11, 25, 14, 7, "existing", "active"),
    ("Snickeriet Linköping AB", "559023456", "aktiebolag", "0580",
     ["carpentry"], 7, 15, 5, 4, "existing", "active"),
    ("Kiruna Second Hand Ekonomisk Förening", "769645678", "ekonomisk_forening", "2584",
     ["second_hand"], 4, 12, 8, 5, "founded", "active"),
    ("Örebro Städkooperativ", "769656789", "ekonomisk_forening", "1880",
     ["cleaning"], 10, 24, 17, 9, "municipal_spinoff", "pending"),
    ("Gotlands Matlag Stiftelse", "802423456", "stiftelse", "0980",
     ["catering", "cafe_restaurant"], 8, 20, 13, 6, "founded", "pending"),
    ("Knivsta Återbruk AB", "559034567", "aktiebolag", "0330",
     ["recycling", "second_hand"], 3, 9, 6, 4, "founded", "pending"),
    ("Västerås Arbetsgemenskap", "802434567", "ideell_forening", "1980",
     ["gardening", "carpentry"], 6, 14, 10, 8, "existing", "pending"),
    ("Helsingborgs Bageri Ekonomisk Förening", "769667890", "ekonomisk_forening", "1283",
     ["cafe_restaurant"], 5, 11, 7, 3, "existing", "deregistered"),
]


def registration(row: tuple[Any, ...]) -> CompanyRegistration:
    name, nine, form, muni, industries, emp, engaged, target, places, origin, _ = row
    slug = name.split()[0].lower().translate(str.maketrans("åäöé", "aaoe"))
    return CompanyRegistration.model_validate({
        "org_number": org_number(nine), "name": name, "legal_form": form,
        "municipality_code": muni, "industries": industries,
        "description": f"{name} erbjuder arbetsträning och anställning.",
        "website": f"https://{slug}.example.se",
        "contacts": [{"name": "Verksamhetsledare", "role": "manager",
                      "email": f"info@{slug}.example.se", "phone": "+46 8 123 456",
                      "public": True}],
        "workforce": {"as_of": date(2026, 1, 1).isoformat(), "employees_total": emp,
                      "engaged_total": engaged, "target_group_engaged": target},
        "training_places": places, "origin": origin,
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    })


async def seed(settings: RegistrySettings) -> int:
    pool = await create_pool(settings.database_url, 1, 2)
    try:
        async with pool.acquire() as conn:
            if await conn.fetchval("SELECT count(*) FROM companies"):
                return 0
        registry = Registry(lambda: pool)
        for row in COMPANIES:
            rep = Principal(sub=f"demo-rep-{row[1]}", name=None, roles=frozenset({"company_rep"}))
            company = await registry.register(registration(row), rep)
            if row[-1] in ("active", "deregistered"):
                await registry.decide_verification(
                    company.id, VerificationDecision(decision="verified"), OFFICER)
            if row[-1] == "deregistered":
                await registry.deregister(
                    company.id, DeregistrationRequest(reason="wound_up"), OFFICER)
        return len(COMPANIES)
    finally:
        await pool.close()
