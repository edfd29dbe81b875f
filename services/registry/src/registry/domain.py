"""The registry's rules: what an ASF is, how its status moves, what it may do. Pure, no I/O.

ASF (arbetsintegrerande socialt företag) is not a legal form: a company counts as one
when it meets five criteria. Reserved contracts follow LOU 4 kap. 18 §: at least 30 %
of those engaged must belong to the target group.

Each decision returns the company as it is afterwards, with the events it causes in
`company.events`.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal, Self
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    PrivateAttr,
    field_validator,
    model_validator,
)

from asf_contracts import registry as ev
from asf_contracts.registry import CompanyContact, CompanyPayload, CompanyStatus
from asf_kit.fields import NONBLANK_TEXT_PATTERN, Documented, Email, Input, not_null
from asf_kit.rules import RuleError
from registry.municipalities import municipality
from registry.values import (
    Event,
    LongText,
    MunicipalityCode,
    OrgNumber,
    Phone,
    Tags,
    Text,
    add_years,
    normalize_org_number,
)

__all__ = [
    "Company", "CompanyPatch", "CompanyRegistration", "RuleError", "normalize_org_number",
]

RESERVED_CONTRACT_SHARE = 0.30
"""LOU 4 kap. 18 §: share of the engaged who must be in the target group."""
VERIFICATION_YEARS = 2
"""A verification is valid for two years after the decision unless the officer says
otherwise."""
EXPIRY_WARNING = timedelta(days=30)
"""How long before `valid_until` the company and the officers are warned."""
REVIEWED_FIELDS = ("criteria", "workforce", "training_places", "legal_form")
"""What a verification vouches for: changing one of these sends the company back to review."""
SWEDEN = ZoneInfo("Europe/Stockholm")

LegalForm = Literal[
    "ekonomisk_forening", "ideell_forening", "aktiebolag", "stiftelse", "handelsbolag",
    "kommanditbolag", "other",
]
Origin = Literal["founded", "municipal_spinoff", "existing"]
ParticipationForm = Literal["ownership", "agreement", "other_documented"]
DeregistrationReason = Literal["bankruptcy", "liquidation", "wound_up", "criteria_unmet", "other"]
VerificationLevel = Literal["self_declared", "verified", "certified"]


def local_date(at: datetime) -> date:
    """The date in Sweden at `at`: verification days begin and end at Swedish midnight."""
    return at.astimezone(SWEDEN).date()


# --- what a company declares -------------------------------------------------------------


class Contact(Input):
    name: Text
    role: Annotated[str, Field(max_length=100)] | None = None
    email: Email | None = None
    phone: Phone | None = None
    public: bool = Field(
        default=False, description="Shown in the public register (set by the company)"
    )


class Participation(Input):
    """How employees take part in running the company (criterion 3)."""

    model_config = ConfigDict(json_schema_extra={
        "if": {"properties": {"form": {"const": "other_documented"}}},
        "then": {"required": ["description"],
                 "properties": {"description": {"type": "string",
                                                "pattern": NONBLANK_TEXT_PATTERN}}},
    })

    form: ParticipationForm
    description: LongText | None = None

    @model_validator(mode="after")
    def _documented(self) -> Self:
        if self.form == "other_documented" and not self.description:
            raise ValueError("description is required when form is other_documented")
        return self


class Criteria(Input):
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


class Workforce(Input):
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


WebAddress = Annotated[HttpUrl, Documented(pattern=r"^https?://")]


def _none_when_empty(value: str | None) -> str | None:
    return value or None


class CompanyFields(Input):
    """What a company declares about itself: registration body and the shape of an update."""

    name: Text
    legal_form: LegalForm
    municipality_code: MunicipalityCode
    industries: Tags = Field(min_length=1)
    description: Annotated[LongText | None, AfterValidator(_none_when_empty)] = None
    website: WebAddress | None = None
    contacts: list[Contact] = Field(default_factory=list, max_length=20)
    workforce: Workforce
    training_places: int = Field(ge=0, le=10_000, description="Work-training capacity")
    origin: Origin
    criteria: Criteria


class CompanyRegistration(CompanyFields):
    org_number: OrgNumber = Field(examples=["556036-0793"])


class CompanyPatch(Input):
    """A partial update: the fields given replace the stored ones whole. What a company
    must have may be left out, not sent as null; `description` and `website` may be null."""

    name: Text | None = Field(default=None, json_schema_extra=not_null)
    legal_form: LegalForm | None = Field(default=None, json_schema_extra=not_null)
    municipality_code: MunicipalityCode | None = Field(default=None, json_schema_extra=not_null)
    industries: Tags | None = Field(default=None, json_schema_extra=not_null)
    description: Annotated[LongText | None, AfterValidator(_none_when_empty)] = None
    website: WebAddress | None = None
    contacts: list[Contact] | None = Field(default=None, max_length=20,
                                           json_schema_extra=not_null)
    workforce: Workforce | None = Field(default=None, json_schema_extra=not_null)
    training_places: int | None = Field(default=None, ge=0, le=10_000,
                                        json_schema_extra=not_null)
    origin: Origin | None = Field(default=None, json_schema_extra=not_null)
    criteria: Criteria | None = Field(default=None, json_schema_extra=not_null)
    version: int | None = Field(default=None, ge=1, description="Or send If-Match")

    @field_validator("name", "legal_form", "municipality_code", "industries", "contacts",
                     "workforce", "training_places", "origin", "criteria")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may not be null")
        return value


class Verification(BaseModel):
    level: VerificationLevel = "self_declared"
    by: str | None = None
    at: datetime | None = Field(default=None, description="When the last decision was made")
    valid_until: date | None = Field(
        default=None, description="Last day the verification holds; null when self-declared"
    )
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
"""Status moves a registry officer makes. Besides these, an active company is verified
again (a renewal, or after review), and a change that makes it no longer qualify sends it
back to `pending`."""


class Company(CompanyFields):
    """A company in the register, as stored and as returned."""

    model_config = ConfigDict(extra="ignore")
    _refuse_control: ClassVar[bool] = False  # what is stored was checked when it came in

    id: UUID
    org_number: str
    county: County
    status: CompanyStatus
    verification: Verification
    needs_review: bool = Field(
        default=False,
        description="Changed what its verification vouched for (or the verification ran "
        "out): waiting in the registry officers' queue",
    )
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

    _events: list[Event] = PrivateAttr(default_factory=list)

    @property
    def events(self) -> list[Event]:
        """What the decision that made this state causes (empty for a loaded company)."""
        return self._events

    @classmethod
    def register(cls, reg: CompanyRegistration, by: str, now: datetime) -> Company:
        # `reg` is validated already; built from its parts, not validated a second time
        # (an import registers thousands at once).
        fields = {name: getattr(reg, name) for name in CompanyRegistration.model_fields}
        company = cls._derive(
            trusted=True, id=uuid4(), status="pending", verification=Verification(),
            needs_review=False, deregistration=None, registered_by=by, version=1,
            created_at=now, updated_at=now, **fields,
        )
        return company._causing(ev.COMPANY_REGISTERED)

    @classmethod
    def _derive(cls, *, trusted: bool = False, **data: object) -> Company:
        """Build with the derived fields worked out from the declared ones. `trusted`: every
        value is an already validated one (model instances, not dicts)."""
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
        fields: dict[str, Any] = data
        return cls.model_construct(**fields) if trusted else cls.model_validate(fields)

    def _next(self, now: datetime, **changes: object) -> Company:
        data = self.model_dump()
        data.update(changes)
        data.update(version=self.version + 1, updated_at=now)
        return Company._derive(**data)

    def _causing(self, event_type: str, payload: BaseModel | None = None) -> Company:
        self._events.append(Event(event_type, self.id, self.version, payload or self.payload()))
        return self

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
        """Apply what the company declares now. Changing what a verification vouched for
        (criteria, workforce, training places, legal form) keeps an active company active
        but self-declared and in the officers' review queue; when it no longer qualifies as
        an ASF it goes back to `pending`. A patch that changes nothing changes nothing."""
        if self.status in ("rejected", "deregistered"):
            raise RuleError(
                409, "Company closed", f"a {self.status} company cannot be changed",
                current_status=self.status,
            )
        given = patch.model_dump(exclude_unset=True, exclude={"version"})
        candidate = self._next(now, **given)
        before, after = self.model_dump(mode="json"), candidate.model_dump(mode="json")
        changed = [f for f in CompanyFields.model_fields if f in given and before[f] != after[f]]
        if not changed:
            unchanged = self.model_copy()
            unchanged._events = []
            return unchanged
        if self.status == "active" and set(changed) & set(REVIEWED_FIELDS):
            candidate = candidate.model_copy(update={
                "status": "active" if candidate.qualifies_as_asf else "pending",
                "verification": self.verification.model_copy(
                    update={"level": "self_declared", "valid_until": None}),
                "needs_review": True,
            })
        return candidate._causing(ev.COMPANY_UPDATED, candidate.payload(changed_fields=changed))

    def verify(
        self, by: str, now: datetime, note: str | None, level: VerificationLevel,
        valid_until: date | None,
    ) -> Company:
        """A registry officer vouches for the company: a pending one becomes active; an
        active one is verified again (after a review, or to renew before it runs out)."""
        if self.status != "active":
            self._require("active")
        if not self.qualifies_as_asf:
            raise RuleError(
                409, "Criteria not met",
                "a company can be verified only when all five criteria are declared; "
                f"unmet: {', '.join(self.unmet_criteria)}",
                unmet_criteria=self.unmet_criteria,
            )
        today = local_date(now)
        until = valid_until or add_years(today, VERIFICATION_YEARS)
        if until <= today:
            raise RuleError(
                422, "Validation failed", "valid_until must be in the future",
                errors=[{"field": "valid_until", "message": "must be in the future"}],
            )
        verified = self._next(
            now, status="active", needs_review=False,
            verification=Verification(level=level, by=by, at=now, valid_until=until, note=note),
        )
        return verified._causing(ev.COMPANY_VERIFIED)

    def reject(self, by: str, now: datetime, note: str | None) -> Company:
        self._require("rejected")
        rejected = self._next(
            now, status="rejected", needs_review=False,
            verification=self.verification.model_copy(update={"by": by, "at": now, "note": note}),
        )
        return rejected._causing(ev.COMPANY_REJECTED)

    def deregister(
        self, reason: DeregistrationReason, note: str | None, by: str, now: datetime
    ) -> Company:
        self._require("deregistered")
        gone = self._next(
            now, status="deregistered", needs_review=False,
            deregistration=Deregistration(reason=reason, note=note, by=by, at=now),
        )
        return gone._causing(ev.COMPANY_DEREGISTERED)

    # --- verification expiry -------------------------------------------------------------

    def _verified_until(self) -> date | None:
        if self.status != "active" or self.verification.level == "self_declared":
            return None
        return self.verification.valid_until

    def expiry_warning_due(self, today: date) -> bool:
        """From 30 days before `valid_until` up to that day itself."""
        until = self._verified_until()
        return until is not None and until - EXPIRY_WARNING <= today <= until

    def expired_by(self, today: date) -> bool:
        """`valid_until` is the last day the verification holds; the day after, it is gone."""
        until = self._verified_until()
        return until is not None and today > until

    def warn_of_expiry(self, today: date) -> Company:
        """The warning, 30 days before; the company itself does not change."""
        if not self.expiry_warning_due(today):
            raise RuleError(409, "No expiry due", "the verification is not about to run out")
        until = self.verification.valid_until
        assert until is not None
        warned = self.model_copy()
        warned._events = []
        payload = ev.VerificationExpiringPayload(
            **self.payload().model_dump(), days_left=(until - today).days)
        return warned._causing(ev.COMPANY_VERIFICATION_EXPIRING, payload)

    def expire(self, today: date, now: datetime) -> Company:
        """The day after `valid_until`: back to self-declared and into the review queue, so
        an officer verifies it again."""
        if not self.expired_by(today):
            raise RuleError(409, "Not expired", "the verification still holds")
        until = self.verification.valid_until
        assert until is not None
        expired = self._next(
            now, needs_review=True,
            verification=self.verification.model_copy(
                update={"level": "self_declared", "valid_until": None}),
        )
        payload = ev.VerificationExpiredPayload(
            **expired.payload().model_dump(), expired_on=until + timedelta(days=1))
        return expired._causing(ev.COMPANY_VERIFICATION_EXPIRED, payload)

    def payload(self, changed_fields: list[str] | None = None) -> CompanyPayload:
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
            needs_review=self.needs_review, changed_fields=changed_fields,
        )


# --- requests about a company -----------------------------------------------------------


class VerificationDecision(Input):
    decision: Literal["verified", "rejected"]
    note: LongText | None = None
    level: Literal["verified", "certified"] = "verified"
    valid_until: date | None = Field(
        default=None, description="Last day it holds; defaults to two years after the decision"
    )


class DeregistrationRequest(Input):
    reason: DeregistrationReason
    note: LongText | None = None


class ContractIn(Input):
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
    _refuse_control: ClassVar[bool] = False

    id: UUID
    company_id: UUID
    company_name: str
    recorded_by: str
    created_at: datetime

    @classmethod
    def award(cls, company: Company, body: ContractIn, by: str, now: datetime) -> Contract:
        """Contracts are recorded for active companies."""
        if company.status != "active":
            raise RuleError(
                409, "Company not active",
                f"contracts are recorded for active companies; this one is {company.status}",
                current_status=company.status,
            )
        return cls(**body.model_dump(), id=uuid4(), company_id=company.id,
                   company_name=company.name, recorded_by=by, created_at=now)

    def event(self) -> Event:
        return Event(ev.CONTRACT_AWARDED, self.id, 1,
                     ev.ContractAwardedPayload(**self.model_dump()))

