"""The registry's values: checked field types and the event a decision causes. Pure, no I/O.
(The input base class is the kit's: `asf_kit.fields.Input`.)"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, Field
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.se import orgnr

from asf_kit.fields import Documented
from registry.municipalities import all_municipalities, municipality

TAG_PATTERN = r"^[a-z][a-z0-9_]{1,39}$"
PHONE_PATTERN = r"^\+?[0-9][0-9 \-()]{4,24}$"
PHONE_SCHEMA_PATTERN = r"^\+?[0-9][0-9 \-()]{3,23}[0-9\-()]$"
"""PHONE_PATTERN as the document says it: it is checked after trimming, so no white space
at the end."""
ORG_NUMBER_PATTERN = r"^[013-9][0-9][2-9][0-9]{3}-?[0-9]{4}$"
"""10 digits, group digit not 2 (a public body), third digit 2 or more (not a person)."""
_TAG = re.compile(TAG_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)


def normalize_org_number(value: str) -> str:
    """`NNNNNN-NNNN` or `NNNNNNNNNN`, Luhn-checked, not a public body, not a person."""
    if not isinstance(value, str):
        raise ValueError("must be a string of 10 digits, NNNNNN-NNNN or NNNNNNNNNN")
    raw = value.strip()
    if not re.fullmatch(r"\d{6}-?\d{4}", raw):
        raise ValueError("must be 10 digits, written NNNNNN-NNNN or NNNNNNNNNN")
    try:
        digits = orgnr.validate(raw)
    except StdnumError as e:
        raise ValueError("is not a valid organisationsnummer (check digit fails)") from e
    if digits[0] == "2":
        raise ValueError(
            "group digit 2 is a public body (state, region or municipality); "
            "an ASF must be independent of the public sector"
        )
    if int(digits[2]) < 2:
        raise ValueError(
            "is a personal identity number (sole trader), not an organisationsnummer"
        )
    return f"{digits[:6]}-{digits[6:]}"


def check_municipality(code: str) -> str:
    if municipality(code) is None:
        raise ValueError(f"unknown municipality code {code!r}; see GET /municipalities")
    return code


def check_tags(tags: list[str]) -> list[str]:
    for t in tags:
        if not _TAG.match(t):
            raise ValueError(
                f"{t!r} is not a short tag (lower case letters, digits and _, 2-40 long)"
            )
    if len(set(tags)) != len(tags):
        raise ValueError("a tag is listed twice")
    return tags


def check_phone(value: str | None) -> str | None:
    if value is not None and not _PHONE.match(value):
        raise ValueError("is not a phone number")
    return value


OrgNumber = Annotated[str, AfterValidator(normalize_org_number), Documented(
    pattern=ORG_NUMBER_PATTERN,
    description="Organisationsnummer, NNNNNN-NNNN or NNNNNNNNNN; its Luhn check digit is "
    "checked too (not expressible in the schema)")]
MunicipalityCode = Annotated[str, AfterValidator(check_municipality), Documented(
    enum=sorted(all_municipalities()), description="One of the 290 (GET /municipalities)")]
Tags = Annotated[list[str], Field(max_length=20), AfterValidator(check_tags), Documented(
    items={"type": "string", "pattern": TAG_PATTERN}, uniqueItems=True)]
Phone = Annotated[str, AfterValidator(check_phone), Documented(pattern=PHONE_SCHEMA_PATTERN)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=5000)]


def add_years(d: date, years: int) -> date:
    """The same day `years` later; 29 February becomes 28 February in a common year."""
    try:
        return d.replace(year=d.year + years)
    except ValueError:
        return d.replace(year=d.year + years, day=28)


@dataclass(frozen=True)
class Event:
    """An event a decision causes, built beside the decision; the service puts it in the
    outbox with an envelope."""

    type: str
    aggregate_id: UUID
    aggregate_version: int
    payload: BaseModel
