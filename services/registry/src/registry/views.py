"""Who sees what of a company (SPEC 2, 3.1), and the public register's shapes: the JSON of
`/public/...` and the columns of the open-data CSV. Pure, no I/O.

- A registry officer, and the company's own representative, see the whole company in any
  status, decision notes and `registered_by` included.
- Case workers and analysts see active companies with all their contacts, without the
  decision notes and `registered_by`.
- Everybody else signed in (other companies' representatives, auditors) sees active
  companies as the public does: the public shape, with only the contacts the company marked
  `public`.
- Anyone without a token sees the public register: the public shape of active companies.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

import orjson
from pydantic import BaseModel

from asf_kit.auth import Principal, Role
from registry.municipalities import municipality


class Sight(StrEnum):
    WHOLE = "whole"
    CONTACTS = "contacts"
    PUBLIC = "public"


def is_own(who: Principal, company_id: UUID | str, registered_by: str | None) -> bool:
    """The company's own representative: named by the token's `company_id`, or the one who
    registered it."""
    return who.has(Role.COMPANY_REP) and (
        (who.company_id is not None and str(who.company_id) == str(company_id))
        or (registered_by is not None and registered_by == who.sub)
    )


def sight(who: Principal, company_id: UUID | str, registered_by: str | None) -> Sight:
    if who.has(Role.REGISTRY_OFFICER) or is_own(who, company_id, registered_by):
        return Sight.WHOLE
    if who.has(Role.CASE_WORKER, Role.ANALYST):
        return Sight.CONTACTS
    return Sight.PUBLIC


def sees_every_status(who: Principal) -> bool:
    return who.has(Role.REGISTRY_OFFICER)


def company_seen_by(who: Principal, doc: dict[str, Any]) -> dict[str, Any] | None:
    """The company document as `who` may see it, or None when they may not see it at all."""
    seen = sight(who, doc["id"], doc.get("registered_by"))
    if seen is not Sight.WHOLE and doc["status"] != "active":
        return None
    if seen is Sight.PUBLIC:
        return public_company(doc)
    whole = {**doc, "contacts": [{**c, "public": c.get("public", False)}
                                 for c in doc.get("contacts") or ()]}
    if seen is Sight.CONTACTS:
        whole.update(registered_by=None, deregistration=None,
                     verification={**doc["verification"], "note": None})
    return whole


# --- the public shape -------------------------------------------------------------------


class PublicContact(BaseModel):
    name: str
    role: str | None = None
    email: str | None = None
    phone: str | None = None


class PublicCounty(BaseModel):
    code: str
    name: str


class PublicVerification(BaseModel):
    level: str
    valid_until: date | None = None


class PublicCompany(BaseModel):
    """An active company as the public register shows it."""

    id: UUID
    org_number: str
    name: str
    legal_form: str
    municipality_code: str
    municipality_name: str
    county: PublicCounty
    industries: list[str]
    description: str | None = None
    website: str | None = None
    contacts: list[PublicContact]
    training_places: int
    qualifies_as_asf: bool
    reserved_contract_eligible: bool
    verification: PublicVerification


CONTACT_FIELDS = tuple(PublicContact.model_fields)


def public_company(doc: dict[str, Any]) -> dict[str, Any]:
    """The public shape of a stored company document: an allow-list, field by field, and
    only the contacts marked public."""
    m = municipality(doc["municipality_code"])
    return {
        "id": doc["id"],
        "org_number": doc["org_number"],
        "name": doc["name"],
        "legal_form": doc["legal_form"],
        "municipality_code": doc["municipality_code"],
        "municipality_name": m.name if m else "",
        "county": {"code": doc["county"]["code"], "name": doc["county"]["name"]},
        "industries": list(doc["industries"]),
        "description": doc.get("description"),
        "website": doc.get("website"),
        "contacts": [{k: c.get(k) for k in CONTACT_FIELDS}
                     for c in doc.get("contacts") or () if c.get("public") is True],
        "training_places": doc["training_places"],
        "qualifies_as_asf": doc["qualifies_as_asf"],
        "reserved_contract_eligible": doc["reserved_contract_eligible"],
        "verification": {"level": doc["verification"]["level"],
                         "valid_until": doc["verification"].get("valid_until")},
    }


# --- open data --------------------------------------------------------------------------

LICENCE = "CC0-1.0"
LICENCE_URL = "https://creativecommons.org/publicdomain/zero/1.0/"

CSV_COLUMNS = (
    "id", "org_number", "name", "legal_form", "municipality_code", "municipality_name",
    "county_code", "county_name", "industries", "description", "website", "training_places",
    "qualifies_as_asf", "reserved_contract_eligible", "verification_level",
    "verification_valid_until", "contacts",
)
"""The open-data CSV's columns, in this order, always; new columns only ever go at the end.
`industries` is separated by `;`; booleans are `true`/`false`; dates are ISO 8601; an empty
cell is a missing value; `contacts` is a JSON array of the public contacts
(`name`, `role`, `email`, `phone`)."""


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def csv_row(public: dict[str, Any]) -> list[str]:
    return [
        public["id"], public["org_number"], public["name"], public["legal_form"],
        public["municipality_code"], public["municipality_name"], public["county"]["code"],
        public["county"]["name"], ";".join(public["industries"]), _cell(public["description"]),
        _cell(public["website"]), _cell(public["training_places"]),
        _cell(public["qualifies_as_asf"]), _cell(public["reserved_contract_eligible"]),
        public["verification"]["level"], _cell(public["verification"]["valid_until"]),
        orjson.dumps(public["contacts"]).decode(),
    ]


def csv_lines(rows: Iterable[list[str]], header: bool = False) -> str:
    """Rows as CSV text (RFC 4180: CRLF, quoted where needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    writer.writerows(rows)
    return out.getvalue()


# --- the handbook -----------------------------------------------------------------------


class PublicCompanyRef(BaseModel):
    id: UUID
    name: str


class PublicLearningExample(BaseModel):
    """A published learning example as the handbook shows it: no submitter contact."""

    id: UUID
    title: str
    summary: str
    collaboration_types: list[str]
    municipality_code: str
    municipality_name: str
    county: PublicCounty
    companies: list[PublicCompanyRef]
    published_at: datetime


def public_learning_example(doc: dict[str, Any], active_names: dict[str, str]
                            ) -> dict[str, Any]:
    """`active_names`: id → name of the companies it names that are active now; the others
    are left out, as the public register leaves them out."""
    m = municipality(doc["municipality_code"])
    return {
        "id": doc["id"],
        "title": doc["title"],
        "summary": doc["summary"],
        "collaboration_types": list(doc["collaboration_types"]),
        "municipality_code": doc["municipality_code"],
        "municipality_name": m.name if m else "",
        "county": {"code": m.county_code if m else "", "name": m.county_name if m else ""},
        "companies": [{"id": cid, "name": active_names[cid]}
                      for cid in doc.get("company_ids") or () if cid in active_names],
        "published_at": doc["publication"]["at"],
    }


# --- statistics -------------------------------------------------------------------------


class CountyStats(BaseModel):
    county_code: str
    county_name: str
    companies_active: int
    companies_pending: int
    companies_deregistered: int
    companies_rejected: int
    employees: int
    training_places: int


class Stats(BaseModel):
    counties: list[CountyStats]
    totals: CountyStats

    @classmethod
    def of(cls, per_county: list[CountyStats]) -> Stats:
        totals = CountyStats(
            county_code="", county_name="Sverige",
            **{f: sum(getattr(c, f) for c in per_county) for f in (
                "companies_active", "companies_pending", "companies_deregistered",
                "companies_rejected", "employees", "training_places")},
        )
        return cls(counties=per_county, totals=totals)
