"""Events the registry publishes.

Every company event carries the whole company as it is after the change, so a
consumer can build its read model from any one event and keep the newest by
`aggregate_version`.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict

PRODUCER = "registry"

COMPANY_REGISTERED = "registry.company.registered"
COMPANY_UPDATED = "registry.company.updated"
COMPANY_VERIFIED = "registry.company.verified"
COMPANY_REJECTED = "registry.company.rejected"
COMPANY_DEREGISTERED = "registry.company.deregistered"
COMPANY_VERIFICATION_EXPIRING = "registry.company.verification_expiring"
COMPANY_VERIFICATION_EXPIRED = "registry.company.verification_expired"
CONTRACT_AWARDED = "registry.contract.awarded"
LEARNING_EXAMPLE_SUBMITTED = "registry.learning_example.submitted"
LEARNING_EXAMPLE_PUBLISHED = "registry.learning_example.published"
LEARNING_EXAMPLE_DECLINED = "registry.learning_example.declined"

COMPANY_EVENTS = (
    COMPANY_REGISTERED, COMPANY_UPDATED, COMPANY_VERIFIED, COMPANY_REJECTED,
    COMPANY_DEREGISTERED, COMPANY_VERIFICATION_EXPIRING, COMPANY_VERIFICATION_EXPIRED,
)
"""Every event that carries the whole company (`CompanyPayload` or a subclass of it)."""

CompanyStatus = Literal["pending", "active", "rejected", "deregistered"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class CompanyContact(_Payload):
    """A named contact of the company itself (not a participant)."""

    name: str
    role: str | None = None
    email: str | None = None
    phone: str | None = None


class CompanyPayload(_Payload):
    """The company after the change: what other services may know about it."""

    id: UUID
    org_number: str
    name: str
    legal_form: str
    municipality_code: str
    county_code: str
    industries: list[str]
    training_places: int
    origin: str
    status: CompanyStatus
    qualifies_as_asf: bool
    reserved_contract_eligible: bool
    verification_level: str
    verified_at: datetime | None = None
    valid_until: date | None = None
    contacts: list[CompanyContact] = []
    deregistration_reason: str | None = None
    decision_note: str | None = None
    needs_review: bool = False
    """Changed after verification: waiting in the registry officers' review queue."""
    changed_fields: list[str] | None = None
    """On `registry.company.updated`: the top-level fields the change touched."""


class VerificationExpiringPayload(CompanyPayload):
    """The verification runs out on `valid_until`; published once, 30 days before."""

    days_left: int


class VerificationExpiredPayload(CompanyPayload):
    """The day passed: the level went back to `self_declared` (published once)."""

    expired_on: date


class ContractAwardedPayload(_Payload):
    id: UUID
    company_id: UUID
    company_name: str
    municipality_code: str
    title: str
    procurement_reference: str | None = None
    value_sek: int
    start: date
    end: date | None = None
    reserved: bool


class LearningExampleContact(_Payload):
    """The submitter, who SKR's information officer may want to reach."""

    name: str
    email: str


class LearningExampleSubmittedPayload(_Payload):
    id: UUID
    municipality_code: str
    company_ids: list[UUID]
    title: str
    summary: str
    collaboration_types: list[str]
    contact: LearningExampleContact


class LearningExampleDecidedPayload(_Payload):
    """An analyst published or declined the example; the submitter is told."""

    id: UUID
    municipality_code: str
    title: str
    decision: Literal["published", "declined"]
    note: str | None = None
    contact: LearningExampleContact


PAYLOADS: dict[tuple[str, int], type[BaseModel]] = {
    (COMPANY_REGISTERED, 1): CompanyPayload,
    (COMPANY_UPDATED, 1): CompanyPayload,
    (COMPANY_VERIFIED, 1): CompanyPayload,
    (COMPANY_REJECTED, 1): CompanyPayload,
    (COMPANY_DEREGISTERED, 1): CompanyPayload,
    (COMPANY_VERIFICATION_EXPIRING, 1): VerificationExpiringPayload,
    (COMPANY_VERIFICATION_EXPIRED, 1): VerificationExpiredPayload,
    (CONTRACT_AWARDED, 1): ContractAwardedPayload,
    (LEARNING_EXAMPLE_SUBMITTED, 1): LearningExampleSubmittedPayload,
    (LEARNING_EXAMPLE_PUBLISHED, 1): LearningExampleDecidedPayload,
    (LEARNING_EXAMPLE_DECLINED, 1): LearningExampleDecidedPayload,
}
"""Each (event_type, major version) the registry publishes, with its payload model."""
