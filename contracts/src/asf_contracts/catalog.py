"""Every event the services publish, by (event_type, major version), with its payload model."""

from __future__ import annotations

from pydantic import BaseModel

from asf_contracts import casework, registry

EVENTS: dict[tuple[str, int], type[BaseModel]] = {**registry.PAYLOADS, **casework.PAYLOADS}

PRODUCERS: dict[str, str] = {
    **{t: registry.PRODUCER for t, _ in registry.PAYLOADS},
    **{t: casework.PRODUCER for t, _ in casework.PAYLOADS},
}
