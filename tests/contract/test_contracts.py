"""The event contracts: generated files in step with the models, and compatible with what
was released for each major version."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from asf_contracts.catalog import EVENTS
from asf_contracts.compat import breaking_changes
from asf_contracts.schemas import RELEASED_DIR, all_schemas, drifted

CURRENT = all_schemas()
RELEASED = {p.name: json.loads(p.read_text()) for p in sorted(RELEASED_DIR.glob("*.json"))}
PERSONAL = ("given_name", "family_name", "personal_identity_number", "personnummer", "phone")


def test_checked_in_schemas_and_asyncapi_match_the_models() -> None:
    stale = drifted()
    assert stale == [], (
        f"regenerate with `uv run python -m asf_contracts.schemas`: {[p.name for p in stale]}")


def test_every_event_has_a_released_baseline() -> None:
    missing = sorted(set(CURRENT) - set(RELEASED))
    assert missing == [], f"freeze new majors with `--release`: {missing}"


@pytest.mark.parametrize("name", sorted(RELEASED))
def test_current_schema_is_compatible_with_the_released_major(name: str) -> None:
    assert name in CURRENT, f"{name} was released and must keep being published"
    assert breaking_changes(RELEASED[name], CURRENT[name]) == []


@pytest.mark.parametrize("name", sorted(CURRENT))
def test_no_event_can_carry_personal_data(name: str) -> None:
    text = json.dumps(CURRENT[name])
    if name.startswith("casework."):
        assert not [p for p in PERSONAL if p in text]


def _company_schema() -> dict[str, Any]:
    return copy.deepcopy(CURRENT["registry.company.registered.v1.json"])


def _payload(schema: dict[str, Any]) -> dict[str, Any]:
    ref = schema["properties"]["payload"]["$ref"].removeprefix("#/$defs/")
    payload: dict[str, Any] = schema["$defs"][ref]
    return payload


def test_checker_accepts_an_added_optional_field() -> None:
    new = _company_schema()
    _payload(new)["properties"]["founded_year"] = {"type": "integer"}
    assert breaking_changes(_company_schema(), new) == []


@pytest.mark.parametrize(("change", "expected"), [
    (lambda p: p["properties"].pop("training_places"), "training_places: removed"),
    (lambda p: p["properties"].__setitem__("training_places", {"type": "string"}),
     "payload.training_places: type changed"),
    (lambda p: p["required"].append("website"), "payload.website: newly required"),
    (lambda p: p["required"].remove("name"), "payload.name: was required, now optional"),
])
def test_checker_refuses_breaking_changes(change: Any, expected: str) -> None:
    new = _company_schema()
    payload = _payload(new)
    payload.setdefault("required", [])
    change(payload)
    found = breaking_changes(_company_schema(), new)
    assert any(expected in f for f in found), found


def test_catalog_covers_registry_and_casework() -> None:
    producers = {t.split(".")[0] for t, _ in EVENTS}
    assert producers == {"registry", "casework"}
