"""The registry's rules: what an ASF is, how its status moves, what it may do. Pure, no I/O.

ASF (arbetsintegrerande socialt företag) is not a legal form: a company counts as one
when it meets five criteria. Reserved contracts follow LOU 4 kap. 18 §: at least 30 %
of those engaged must belong to the target group.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal, Self
from uuid import UUID, uuid4

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    field_validator,
    model_validator,
)
from stdnum.exceptions import ValidationError as StdnumError
from stdnum.se import orgnr

from asf_contracts.registry import CompanyContact, CompanyPayload, CompanyStatus
from asf_kit.fields import Email
from asf_kit.rules import RuleError
from registry.municipalities import municipality

RESERVED_CONTRACT_SHARE = 0.30
"""LOU 4 kap. 18 §: share of the engaged who must be in the target group."""
VERIFICATION_VALIDITY = timedelta(days=3 * 365)

LegalForm = Literal[
    "ekonomisk_forening", "ideell_forening", "aktiebolag", "stiftelse", "handelsbolag",
    "kommanditbolag", "other",
]
Origin = Literal["founded", "municipal_spinoff", "existing"]
ParticipationForm = Literal["ownership", "agreement", "other_documented"]
DeregistrationReason = Literal["bankruptcy", "liquidation", "wound_up", "criteria_unmet", "other"]
VerificationLevel = Literal["self_declared", "verified", "certified"]
CollaborationType = Literal[
    "work_training", "founding_support", "municipal_spinoff", "reserved_contract", "other"
]

_TAG = re.compile(r"^[a-z][a-z0-9_]{1,39}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 \-()]{4,24}$")


# --- values -----------------------------------------------------------------------------


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


OrgNumber = Annotated[str, AfterValidator(normalize_org_number)]
MunicipalityCode = Annotated[str, AfterValidator(check_municipality)]
Tags = Annotated[list[str], Field(max_length=20), AfterValidator(check_tags)]
Text = Annotated[str, Field(min_length=1, max_length=200)]
LongText = Annotated[str, Field(max_length=5000)]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Contact(_In):
    name: Text
    role: Annotated[str, Field(max_length=100)] | None = None
    email: Email | None = None
    phone: Annotated[str | None, AfterValidator(check_phone)] = None


class Participation(_In):
    """How employees take part in running the company (criterion 3)."""

    form: ParticipationForm
    description: LongText | None = None

    @model_validator(mode="after")
    def _documented(self) -> Self:
        if self.form == "other_documented" and not self.description:
            raise ValueError("description is required when form is other_documented")
        return self


class Criteria(_In):
    """The five criteria, as declared by the company. Each must be given, true or false."""

    runs_business: bool = Field(description="Produces and sells goods or services")
    integration_purpose: bool = Field(
        description="Overarching purpose: integrate people with great difficulty getting "
        "or keeping a job"
    )
    participation: Participation | None = Field(
        description="How employees take part; null when they do not"
    )
    reinvests_profits: bool = Field(description="Mainly reinvests profits")
    independent_of_public_sector: bool

    def unmet(self) -> list[str]:
        """Names of the criteria not declared, in SPEC order."""
        missing = []
        if not self.runs_business:
            missing.append("runs_business")
        if not self.integration_purpose:
            missing.append("integration_purpose")
        if self.participation is None:
            missing.append("participation")
        if not self.reinvests_profits:
            missing.append("reinvests_profits")
        if not self.independent_of_public_sector:
            missing.append("independent_of_public_sector")
        return missing


class Workforce(_In):
    as_of: date
    employees_total: int = Field(ge=0, le=100_000)
    engaged_total: int = Field(
        ge=0, le=100_000, description="Everyone working there, participants included"
    )
    target_group_engaged: int = Field(ge=0, le=100_000)

    @field_validator("as_of")
    @classmethod
    def _not_future(cls, v: date) -> date:
        if v > datetime.now(UTC).date() + timedelta(days=1):
            raise ValueError("cannot be in the future")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.target_group_engaged > self.engaged_total:
            raise ValueError("target_group_engaged cannot exceed engaged_total")
        if self.employees_total > self.engaged_total:
            raise ValueError("employees_total cannot exceed engaged_total (everyone engaged)")
        return self

    @property
    def target_group_share(self) -> float:
        return self.target_group_engaged / self.engaged_total if self.engaged_total else 0.0


class CompanyFields(_In):
    """What a company declares about itself: registration body and the shape of an update."""

    name: Text
    legal_form: LegalForm
    municipality_code: MunicipalityCode
    industries: Tags = Field(min_length=1)
    description: LongText | None = None
    website: HttpUrl | None = None
    contacts: list[Contact] = Field(default_factory=list, max_length=20)
    workforce: Workforce
    training_places: int = Field(ge=0, le=10_000, description="Work-training capacity")
    origin: Origin
    criteria: Criteria


class CompanyRegistration(CompanyFields):
    org_number: OrgNumber = Field(examples=["556036-0793"])


class CompanyPatch(_In):
    """A partial update: the fields given replace the stored ones whole."""

    name: Text | None = None
    legal_form: LegalForm | None = None
    municipality_code: MunicipalityCode | None = None
    industries: Tags | None = None
    description: LongText | None = None
    website: HttpUrl | None = None
    contacts: list[Contact] | None = Field(default=None, max_length=20)
    workforce: Workforce | None = None
    training_places: int | None = Field(default=None, ge=0, le=10_000)
    origin: Origin | None = None
    criteria: Criteria | None = None
    version: int | None = Field(default=None, ge=1, description="Or send If-Match")


class Verification(BaseModel):
    level: VerificationLevel = "self_declared"
    by: str | None = None
    at: datetime | None = None
    valid_until: date | None = None
    note: str | None = None


class Deregistration(BaseModel):
    reason: DeregistrationReason
    note: str | None = None
    by: str
    at: datetime


class County(BaseModel):
    code: str
    name: str


# --- the aggregate ----------------------------------------------------------------------

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "pending": ("active", "rejected"),
    "active": ("deregistered",),
    "rejected": (),
    "deregistered": (),
}


class Company(CompanyFields):
    """A company in the register, as stored and as returned."""

    model_config = ConfigDict(extra="ignore")

    id: UUID
    org_number: str
    county: County
    status: CompanyStatus
    verification: Verification
    deregistration: Deregistration | None = None
    qualifies_as_asf: bool = Field(description="All five criteria declared")
    unmet_criteria: list[str]
    reserved_contract_eligible: bool = Field(
        description="Integration purpose and at least 30 % of the engaged in the target group "
        "(LOU 4 kap. 18 §); indicative, the buyer decides at tender time"
    )
    target_group_share: float
    registered_by: str | None = None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def register(cls, reg: CompanyRegistration, by: str, now: datetime) -> Company:
        fields = reg.model_dump()
        return cls._derive(
            id=uuid4(), status="pending", verification=Verification(),
            registered_by=by, version=1, created_at=now, updated_at=now, **fields,
        )

    @classmethod
    def _derive(cls, **data: object) -> Company:
        """Build with the derived fields worked out from the declared ones."""
        criteria = Criteria.model_validate(data["criteria"])
        workforce = Workforce.model_validate(data["workforce"])
        m = municipality(str(data["municipality_code"]))
        assert m is not None
        unmet = criteria.unmet()
        share = workforce.target_group_share
        data.update(
            county=County(code=m.county_code, name=m.county_name),
            qualifies_as_asf=not unmet,
            unmet_criteria=unmet,
            target_group_share=round(share, 4),
            reserved_contract_eligible=criteria.integration_purpose
            and workforce.engaged_total > 0
            and share >= RESERVED_CONTRACT_SHARE,
        )
        return cls.model_validate(data)

    def _next(self, now: datetime, **changes: object) -> Company:
        data = self.model_dump()
        data.update(changes)
        data.update(version=self.version + 1, updated_at=now)
        return Company._derive(**data)

    def _require(self, to: str) -> None:
        allowed = TRANSITIONS[self.status]
        if to not in allowed:
            raise RuleError(
                409, "Transition not allowed",
                f"a {self.status} company cannot become {to}; allowed: "
                f"{', '.join(allowed) if allowed else 'none'}",
                current_status=self.status, allowed=list(allowed),
            )

    def update(self, patch: CompanyPatch, now: datetime) -> Company:
        changes = patch.model_dump(exclude_unset=True, exclude={"version"})
        if self.status in ("rejected", "deregistered"):
            raise RuleError(
                409, "Company closed", f"a {self.status} company cannot be changed",
                current_status=self.status,
            )
        return self._next(now, **changes)

    def verify(
        self, by: str, now: datetime, note: str | None, level: VerificationLevel,
        valid_until: date | None,
    ) -> Company:
        self._require("active")
        if not self.qualifies_as_asf:
            raise RuleError(
                409, "Criteria not met",
                "a company can be verified only when all five criteria are declared; "
                f"unmet: {', '.join(self.unmet_criteria)}",
                unmet_criteria=self.unmet_criteria,
            )
        until = valid_until or (now + VERIFICATION_VALIDITY).date()
        if until <= now.date():
            raise RuleError(
                422, "Validation failed", "valid_until must be in the future",
                errors=[{"field": "valid_until", "message": "must be in the future"}],
            )
        return self._next(
            now, status="active",
            verification=Verification(level=level, by=by, at=now, valid_until=until, note=note),
        )

    def reject(self, by: str, now: datetime, note: str | None) -> Company:
        self._require("rejected")
        return self._next(
            now, status="rejected",
            verification=self.verification.model_copy(update={"by": by, "at": now, "note": note}),
        )

    def deregister(
        self, reason: DeregistrationReason, note: str | None, by: str, now: datetime
    ) -> Company:
        self._require("deregistered")
        return self._next(
            now, status="deregistered",
            deregistration=Deregistration(reason=reason, note=note, by=by, at=now),
        )

    def payload(self) -> CompanyPayload:
        """What other services learn of the company."""
        return CompanyPayload(
            id=self.id, org_number=self.org_number, name=self.name, legal_form=self.legal_form,
            municipality_code=self.municipality_code, county_code=self.county.code,
            industries=self.industries, training_places=self.training_places,
            origin=self.origin, status=self.status, qualifies_as_asf=self.qualifies_as_asf,
            reserved_contract_eligible=self.reserved_contract_eligible,
            verification_level=self.verification.level, verified_at=self.verification.at,
            valid_until=self.verification.valid_until,
            contacts=[CompanyContact(**c.model_dump()) for c in self.contacts],
            deregistration_reason=self.deregistration.reason if self.deregistration else None,
            decision_note=self.verification.note,
        )


# --- other requests ---------------------------------------------------------------------


class VerificationDecision(_In):
    decision: Literal["verified", "rejected"]
    note: LongText | None = None
    level: Literal["verified", "certified"] = "verified"
    valid_until: date | None = Field(
        default=None, description="Defaults to three years from the decision"
    )


class DeregistrationRequest(_In):
    reason: DeregistrationReason
    note: LongText | None = None


class ContractIn(_In):
    """A reserved contract awarded to the company (LOU 4 kap. 18 §) or an ordinary one."""

    municipality_code: MunicipalityCode
    title: Text
    procurement_reference: Annotated[str, Field(max_length=100)] | None = None
    value_sek: int = Field(ge=0, le=100_000_000_000)
    start: date
    end: date | None = None
    reserved: bool

    @model_validator(mode="after")
    def _dates(self) -> Self:
        if self.end is not None and self.end < self.start:
            raise ValueError("end cannot be before start")
        return self


class Contract(ContractIn):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    company_id: UUID
    company_name: str
    recorded_by: str
    created_at: datetime


class SubmitterContact(_In):
    name: Text
    email: Email


class LearningExampleIn(_In):
    """A lärande exempel for SKR's handbook."""

    municipality_code: MunicipalityCode
    company_ids: list[UUID] = Field(default_factory=list, max_length=50)
    title: Text
    summary: Annotated[str, Field(min_length=1, max_length=10_000)]
    collaboration_types: list[CollaborationType] = Field(min_length=1)
    contact: SubmitterContact

    @field_validator("company_ids", "collaboration_types")
    @classmethod
    def _unique(cls, v: list[object]) -> list[object]:
        if len(set(v)) != len(v):
            raise ValueError("an entry is listed twice")
        return v


class LearningExample(LearningExampleIn):
    model_config = ConfigDict(extra="ignore")

    id: UUID
    submitted_by: str
    created_at: datetime
