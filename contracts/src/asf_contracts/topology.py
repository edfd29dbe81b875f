"""Broker topology: the one exchange, and the naming of each service's queues.

Each consuming service owns a quorum queue bound to the routing keys it needs, a
retry exchange and a delay queue for redelivery after a pause, and a dead-letter
queue where a message is parked after `MAX_DELIVERIES` failed tries.
"""

from __future__ import annotations

from dataclasses import dataclass, field

EXCHANGE = "asf.events"
"""The durable topic exchange every event is published to."""

MAX_DELIVERIES = 5
RETRY_DELAY_MS = 5_000


@dataclass(frozen=True)
class ServiceQueues:
    """The queues one consuming service owns, by name."""

    service: str
    bindings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def main(self) -> str:
        return f"{self.service}.events"

    @property
    def retry_exchange(self) -> str:
        return f"{self.service}.retry"

    @property
    def retry(self) -> str:
        return f"{self.service}.events.retry"

    @property
    def dead_letter_exchange(self) -> str:
        return f"{self.service}.dlx"

    @property
    def dead_letter(self) -> str:
        return f"{self.service}.events.dlq"
