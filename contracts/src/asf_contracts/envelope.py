"""The envelope every event travels in (SPEC 4)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


def routing_key(event_type: str, event_version: int) -> str:
    """`<service>.<aggregate>.<event>.v<major>`, e.g. `registry.company.registered.v1`."""
    return f"{event_type}.v{event_version}"


class Envelope(BaseModel):
    """One event as it travels over the broker.

    Consumers ignore unknown fields, so producers may add optional ones within a major version.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: UUID = Field(default_factory=uuid4)
    event_type: str = Field(
        description="`<service>.<aggregate>.<event>`", examples=["registry.company.registered"]
    )
    event_version: int = Field(ge=1, description="Major version of the payload schema")
    occurred_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))
    producer: str = Field(description="Service and version that wrote the event")
    correlation_id: str | None = None
    causation_id: str | None = Field(
        default=None, description="The event or request that caused this event"
    )
    aggregate_id: UUID
    aggregate_version: int = Field(ge=1)
    payload: dict[str, Any]

    @property
    def routing_key(self) -> str:
        return routing_key(self.event_type, self.event_version)
