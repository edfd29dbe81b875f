"""What callers send casework, validated: identity numbers, names, the bodies of each request,
and the vocabularies (stages, exit reasons, placement kinds, employment forms). Pure, no I/O.

The rules that decide what may happen to a case are in `domain`.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Literal, Self
from uuid import UUID

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from stdnum import luhn

from asf_kit.fields import DATE_1900_2100, Documented, Email, Input, not_null

Stage = Literal["referred", "assessment", "in_training", "employed", "closed"]
STAGES: tuple[Stage, ...] = ("referred", "assessment", "in_training", "employed", "closed")

ExitReason = Literal["studies", "other_programme", "sick_leave", "moved", "dropped_out", "unknown"]
ReferralSource = Literal[
    "social_services",  # socialtjänsten
    "employment_service",  # Arbetsförmedlingen
    "social_insurance",  # Försäkringskassan
    "coordination_association",  # samordningsförbund
    "self",
]
PlacementKind = Literal["work_training", "enhanced_work_training", "internship", "daily_activity"]
PlacementEndReason = Literal[
    "completed", "employed", "interrupted", "company_deregistered", "case_closed", "other"
]
EmploymentForm = Literal[
    "unsubsidised",
    "wage_subsidy",  # lönebidrag
    "new_start_job",  # nystartsjobb
    "introduction_job",  # introduktionsjobb
    "sheltered_public",  # offentligt skyddat arbete (OSA)
    "other_subsidised",
]


# --- values -----------------------------------------------------------------------------

_IDENTITY = re.compile(r"^([0-9]{2})?([0-9]{6})([-+]?)([0-9]{4})$")
IDENTITY_PATTERN = (r"^([0-9]{2})?[0-9]{2}(0[1-9]|1[0-2])(0[1-9]|[12][0-9]|3[01]|6[1-9]|[78][0-9]"
                    r"|9[01])[-+]?[0-9]{4}$")
"""`_IDENTITY` with a month and a day (samordningsnummer: day + 60) that can be, for the
OpenAPI document; the check digit, the date itself and not in the future are checked too."""
PHONE_PATTERN = r"^\+?[0-9][0-9 \-()]{4,24}$"
PHONE_SCHEMA_PATTERN = r"^\+?[0-9][0-9 \-()]{3,23}[0-9\-()]$"
"""PHONE_PATTERN as the document says it: it is checked after trimming, so no white space
at the end."""
_PHONE = re.compile(PHONE_PATTERN)
PLAIN_PATTERN = r"^(?!\s*$)[^\x00-\x1f\x7f-\x9f]*$"
"""`_plain` for the document: no control character at all, and not blank."""


def normalize_identity_number(value: str, today: date | None = None) -> str:
    """A personnummer or samordningsnummer (day + 60) as `YYYYMMDD-NNNN`.

    Accepted as `YYMMDD-NNNN`, `YYMMDDNNNN`, `YYYYMMDD-NNNN` or `YYYYMMDDNNNN`; a
    `+` instead of the dash marks someone aged 100 or more. python-stdnum's
    `se.personnummer` refuses samordningsnummer, so the date is checked here and
    only the Luhn digit is left to stdnum.
    """
    today = today or datetime.now(UTC).date()
    m = _IDENTITY.match(value.strip().replace(" ", ""))
    if not m:
        raise ValueError("must be YYMMDD-NNNN or YYYYMMDD-NNNN (the dash may be left out)")
    century, yymmdd, sep, tail = m.groups()
    if not luhn.is_valid(yymmdd + tail):
        raise ValueError("the check digit does not match")
    yy, month, day = int(yymmdd[:2]), int(yymmdd[2:4]), int(yymmdd[4:6])
    real_day = day - 60 if day > 60 else day  # samordningsnummer add 60 to the day
    if century is not None:
        year = int(century) * 100 + yy
    else:
        c = today.year // 100 - (1 if yy > today.year % 100 else 0) - (1 if sep == "+" else 0)
        year = c * 100 + yy
    try:
        born = date(year, month, real_day)
    except ValueError:
        raise ValueError("the date part is not a date (samordningsnummer: day + 60)") from None
    if born > today:
        raise ValueError("the date part is in the future")
    return f"{year:04d}{month:02d}{day:02d}-{tail}"


def is_coordination_number(normalized: str) -> bool:
    """A samordningsnummer: the day is 61-91."""
    return int(normalized[6:8]) > 60


def _phone(value: str | None) -> str | None:
    if value is not None and not _PHONE.match(value):
        raise ValueError("is not a phone number")
    return value


def _plain(value: str) -> str:
    """No control characters: they mean a broken client, and PostgreSQL refuses NUL."""
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise ValueError("must not contain control characters")
    return value


def _sane(value: date) -> date:
    """Dates of a case lie within a human lifetime of today; this also keeps date
    arithmetic (follow-up due dates) from overflowing."""
    if not date(1900, 1, 1) <= value <= date(2100, 12, 31):
        raise ValueError("must lie between 1900-01-01 and 2100-12-31")
    return value


CaseDate = Annotated[date, AfterValidator(_sane), Documented(pattern=DATE_1900_2100)]
ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_plain),
                      Documented(pattern=PLAIN_PATTERN)]
IdentityNumber = Annotated[
    str, Field(examples=["19900101-0017"]), AfterValidator(normalize_identity_number),
    Documented(pattern=IDENTITY_PATTERN, description="Personnummer or samordningsnummer, "
               "YYMMDD-NNNN or YYYYMMDD-NNNN (the dash may be left out, + for 100 or older); "
               "its Luhn check digit and its date (not in the future) are checked too, which "
               "the schema cannot say"),
]
Name = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_plain),
                 Documented(pattern=PLAIN_PATTERN)]
Phone = Annotated[str, AfterValidator(_phone), Documented(pattern=PHONE_SCHEMA_PATTERN)] | None


# --- input ------------------------------------------------------------------------------


class PersonalData(Input):
    """What identifies the person; encrypted at rest, never in events or logs."""

    given_name: Name
    family_name: Name
    personal_identity_number: IdentityNumber
    phone: Phone = None
    email: Email | None = None


class IdentitySearch(Input):
    personal_identity_number: IdentityNumber


class ParticipantIn(PersonalData):
    referral_source: ReferralSource
    assigned_to: ShortText | None = Field(
        default=None, description="A case worker's `sub`; the creator by default"
    )


class ParticipantPatch(Input):
    """A correction: only the fields given change; `phone` and `email` may be set to null.
    The identity number never changes (a new person is a new referral)."""

    given_name: Name | None = Field(default=None, json_schema_extra=not_null)
    family_name: Name | None = Field(default=None, json_schema_extra=not_null)
    phone: Phone = None
    email: Email | None = None
    referral_source: ReferralSource | None = Field(default=None, json_schema_extra=not_null)
    assigned_to: ShortText | None = Field(
        default=None, description="A case worker of the same municipality (`sub`)",
        json_schema_extra=not_null)
    personal_identity_number: str | None = Field(
        default=None, description="Refused whatever it says: the identity number does not "
        "change", json_schema_extra={"not": {}})
    version: int | None = Field(default=None, description="The version read, if not in If-Match")

    @field_validator("given_name", "family_name", "referral_source", "assigned_to")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value

    @field_validator("personal_identity_number")
    @classmethod
    def _unchanged(cls, value: object) -> object:
        # runs only when the field is sent: whatever it says, it is refused
        raise ValueError("does not change; refer the person anew if it was wrong")

    def personal_changes(self) -> dict[str, str | None]:
        """The personal fields given, by name (never the identity number)."""
        return {k: getattr(self, k) for k in PERSONAL_FIELDS
                if k in self.model_fields_set and k != "personal_identity_number"}


PERSONAL_FIELDS = ("given_name", "family_name", "personal_identity_number", "phone", "email")
"""What identifies the person: sealed at rest, never in events, logs or lists."""


class EmploymentIn(Input):
    # `_employer` in the schema: without an employer_company_id, an employer_name (if/then,
    # which a generated client reads past, where a top-level anyOf would replace the model)
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"not": {"required": ["employer_company_id"],
                        "properties": {"employer_company_id": {"type": "string"}}}},
         "then": {"required": ["employer_name"],
                  "properties": {"employer_name": {"type": "string"}}}},
    ]})

    form: EmploymentForm
    employer_company_id: UUID | None = Field(default=None, description="An ASF in the registry")
    employer_name: ShortText | None = None
    start: CaseDate

    @model_validator(mode="after")
    def _employer(self) -> Self:
        if self.employer_company_id is None and self.employer_name is None:
            raise ValueError("give employer_company_id or employer_name")
        return self


class TransitionIn(Input):
    """`{"to": stage}`, with `exit_reason` when closing and `employment` when employed."""

    # what `_extras` and the case's rule (exit_reason required when closing) say, by `to`
    model_config = ConfigDict(json_schema_extra={"allOf": [
        {"if": {"properties": {"to": {"const": "closed"}}},
         "then": {"required": ["exit_reason"], "properties": {
             "exit_reason": {"type": "string"}}},
         "else": {"properties": {"exit_reason": {"type": "null"}}}},
        {"if": {"properties": {"to": {"const": "employed"}}},
         "then": {"required": ["employment"], "properties": {
             "employment": {"type": "object"}}},
         "else": {"properties": {"employment": {"type": "null"}}}},
    ]})

    to: Stage
    exit_reason: ExitReason | None = None
    employment: EmploymentIn | None = None

    @model_validator(mode="after")
    def _extras(self) -> Self:
        if self.exit_reason is not None and self.to != "closed":
            raise ValueError("exit_reason is given only when closing (to = closed)")
        if self.employment is not None and self.to != "employed":
            raise ValueError("employment is given only when moving to employed")
        if self.to == "employed" and self.employment is None:
            raise ValueError("employment is required when moving to employed")
        return self


class PlacementIn(Input):
    company_id: UUID
    kind: PlacementKind
    start: CaseDate
    planned_end: CaseDate | None = None
    hours_per_week: float | None = Field(default=None, gt=0, le=60)

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.planned_end is not None and self.planned_end < self.start:
            raise ValueError("planned_end cannot be before start")
        return self


class PlacementEndIn(Input):
    reason: PlacementEndReason
    end: CaseDate | None = Field(default=None, description="Today when left out")


class FollowUpIn(Input):
    offset_days: int | None = Field(
        default=None, ge=1, le=3650,
        description="Which follow-up; the earliest one not yet recorded when left out",
    )
    still_employed: bool


class NoteIn(Input):
    text: Annotated[str, Field(min_length=1, max_length=10_000)]
    confidential: bool = Field(
        default=False, description="Only the author and the assigned case worker read the text"
    )
