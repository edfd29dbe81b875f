"""The registry's values: checked field types, the input base class, and the event a decision
causes. Pure, no I/O."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any, ClassVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.se import orgnr

from registry.municipalities import municipality

_TAG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-()]{4,24}$")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (Unicode category Cc) other than tab (\\x09) and newline (\\x0a)."""


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


def refuse_control_characters(value: str) -> str:
    """Text without control characters other than newline and tab. A browser's form sends a
    textarea's line breaks as CRLF, so CRLF counts as a newline; a lone CR does not."""
    text = value.replace("\r\n", "\n")
    found = _CONTROL.search(text)
    if found:
        raise ValueError(
            f"contains the control character U+{ord(found.group()):04X} at position "
            f"{found.start()}; only newline and tab are allowed"
        )
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value if _CONTROL.search(value) is None else refuse_control_characters(value)
    if isinstance(value, list):
        return [refuse_control_characters(v) if isinstance(v, str) else v for v in value]
    return value


class Input(BaseModel):
    """What a caller sends: unknown fields refused, text stripped, and no control characters
    in any text field (the 422 names the field)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _refuse_control: ClassVar[bool] = True

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return _clean(value) if cls._refuse_control else value


OrgNumber = Annotated[str, AfterValidator(normalize_org_number)]
MunicipalityCode = Annotated[str, AfterValidator(check_municipality)]
Tags = Annotated[list[str], Field(max_length=20), AfterValidator(check_tags)]
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
