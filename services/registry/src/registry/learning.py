"""Learning examples (lärande exempel) for SKR's handbook: submitted by anyone signed in,
published or declined by an analyst. Pure, no I/O."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from asf_contracts import registry as ev
from asf_kit.fields import Email, Input
from asf_kit.rules import RuleError
from registry.values import Event, LongText, MunicipalityCode, Text

CollaborationType = Literal[
    "work_training", "founding_support", "municipal_spinoff", "reserved_contract", "other"
]
LearningExampleStatus = Literal["submitted", "published", "declined"]


class SubmitterContact(Input):
    name: Text
    email: Email


class LearningExampleIn(Input):
    """A lärande exempel for SKR's handbook."""

    municipality_code: MunicipalityCode
    company_ids: list[UUID] = Field(default_factory=list, max_length=50,
                                    json_schema_extra={"uniqueItems": True})
    title: Text
    summary: Annotated[str, Field(min_length=1, max_length=10_000)]
    collaboration_types: list[CollaborationType] = Field(
        min_length=1, json_schema_extra={"uniqueItems": True})
    contact: SubmitterContact

    @field_validator("company_ids", "collaboration_types")
    @classmethod
    def _unique(cls, v: list[object]) -> list[object]:
        if len(set(v)) != len(v):
            raise ValueError("an entry is listed twice")
        return v


class PublicationIn(Input):
    decision: Literal["published", "declined"]
    note: LongText | None = Field(default=None, description="Told to the submitter")


class Publication(BaseModel):
    decision: Literal["published", "declined"]
    by: str
    at: datetime
    note: str | None = None


class LearningExample(LearningExampleIn):
    model_config = ConfigDict(extra="ignore")
    _refuse_control: ClassVar[bool] = False

    id: UUID
    status: LearningExampleStatus = "submitted"
    publication: Publication | None = None
    submitted_by: str
    version: int = 1
    created_at: datetime

    _events: list[Event] = PrivateAttr(default_factory=list)

    @property
    def events(self) -> list[Event]:
        return self._events

    @classmethod
    def submit(cls, body: LearningExampleIn, by: str, now: datetime,
               known_company_ids: set[UUID]) -> LearningExample:
        """Every company named must be in the register."""
        errors = [{"field": f"company_ids[{i}]", "message": "no company with this id"}
                  for i, cid in enumerate(body.company_ids) if cid not in known_company_ids]
        if errors:
            raise RuleError(422, "Validation failed",
                            "; ".join(f"{e['field']}: {e['message']}" for e in errors),
                            errors=errors)
        example = cls(**body.model_dump(), id=uuid4(), submitted_by=by, created_at=now)
        example._events.append(Event(
            ev.LEARNING_EXAMPLE_SUBMITTED, example.id, example.version,
            ev.LearningExampleSubmittedPayload(**example.model_dump())))
        return example

    def decide(self, decision: PublicationIn, by: str, now: datetime) -> LearningExample:
        """`submitted` → `published` or `declined`, once; the submitter is told."""
        if self.status != "submitted":
            raise RuleError(
                409, "Already decided",
                f"the learning example is already {self.status}; allowed: none",
                current_status=self.status, allowed=[],
            )
        decided = self.model_copy(update={
            "status": decision.decision, "version": self.version + 1,
            "publication": Publication(decision=decision.decision, by=by, at=now,
                                       note=decision.note),
        })
        decided._events = [Event(
            ev.LEARNING_EXAMPLE_PUBLISHED if decision.decision == "published"
            else ev.LEARNING_EXAMPLE_DECLINED,
            decided.id, decided.version,
            ev.LearningExampleDecidedPayload(
                id=decided.id, municipality_code=decided.municipality_code,
                title=decided.title, decision=decision.decision, note=decision.note,
                contact=ev.LearningExampleContact(**decided.contact.model_dump())),
        )]
        return decided
