"""The broker topology as RabbitMQ definitions, built from the same functions the services
use to declare it, so what operators import and what services declare cannot differ."""

from __future__ import annotations

from typing import Any

from faststream.rabbit import RabbitExchange, RabbitQueue

from asf_contracts.topology import EXCHANGE, ServiceQueues
from asf_kit.consumer import (
    dead_letter_exchange,
    dead_letter_queue,
    main_queue,
    retry_exchange,
    retry_queue,
)


def _exchange(e: RabbitExchange) -> dict[str, Any]:
    return {"name": e.name, "vhost": "/", "type": e.type.value, "durable": True,
            "auto_delete": False, "internal": False, "arguments": {}}


def _queue(q: RabbitQueue) -> dict[str, Any]:
    return {"name": q.name, "vhost": "/", "durable": True, "auto_delete": False,
            "arguments": dict(q.arguments or {})}


def _binding(source: str, queue: str, key: str) -> dict[str, Any]:
    return {"source": source, "vhost": "/", "destination": queue, "destination_type": "queue",
            "routing_key": key, "arguments": {}}


def definitions(services: dict[str, list[str]]) -> dict[str, Any]:
    """RabbitMQ definitions for consuming services, by name, with their routing keys."""
    exchanges = [{"name": EXCHANGE, "vhost": "/", "type": "topic", "durable": True,
                  "auto_delete": False, "internal": False, "arguments": {}}]
    queues: list[dict[str, Any]] = []
    bindings: list[dict[str, Any]] = []
    for service, keys in sorted(services.items()):
        q = ServiceQueues(service=service)
        exchanges += [_exchange(retry_exchange(q)), _exchange(dead_letter_exchange(q))]
        queues += [_queue(main_queue(q)), _queue(retry_queue(q)), _queue(dead_letter_queue(q))]
        bindings += [_binding(EXCHANGE, q.main, key) for key in sorted(keys)]
        bindings += [_binding(q.retry_exchange, q.retry, "#"),
                     _binding(q.dead_letter_exchange, q.dead_letter, "#")]
    return {"vhosts": [{"name": "/"}], "exchanges": exchanges, "queues": queues,
            "bindings": bindings}
