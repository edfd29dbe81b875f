"""The broker topology shipped for operators is the one the services declare."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "deploy" / "rabbitmq" / "definitions.json"


def test_definitions_are_in_step_with_the_services() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "rabbitmq" / "generate.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_each_consumer_has_quorum_queues_with_retry_and_dead_letters() -> None:
    doc = json.loads(DEFINITIONS.read_text())
    queues = {q["name"]: q["arguments"] for q in doc["queues"]}
    for service in ("casework", "notifications"):
        main = queues[f"{service}.events"]
        assert main["x-queue-type"] == "quorum"
        assert main["x-dead-letter-exchange"] == f"{service}.retry"
        retry = queues[f"{service}.events.retry"]
        assert retry["x-dead-letter-routing-key"] == f"{service}.events"
        assert retry["x-message-ttl"] > 0
        assert queues[f"{service}.events.dlq"]["x-queue-type"] == "quorum"
    keys = {(b["destination"], b["routing_key"]) for b in doc["bindings"]}
    assert ("casework.events", "registry.company.deregistered.v1") in keys
    assert ("notifications.events", "registry.learning_example.submitted.v1") in keys
