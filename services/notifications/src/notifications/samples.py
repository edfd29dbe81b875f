"""Sample event payloads, so an analyst can preview any template without a real event.

They carry made-up companies and random participant ids, never real data. A new template
version must render with its event's sample before it can be stored.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from notifications.domain import DIGEST_TEMPLATE, DigestSummary, digest_context
from notifications.routing import ROUTED_EVENTS, TEMPLATE_EVENTS, facts_of

_SAMPLE_COMPANY = "5f0c3b1e-2a4d-4c6b-8e9f-0a1b2c3d4e5f"
_SAMPLE_PARTICIPANT = "0d6a4c2e-8b1f-4e3a-9c5d-7f2e1a0b3c4d"
_SAMPLE_COMPANY_NAME = "Återbruket ekonomisk förening"
_SAMPLE_COMPANY_PAYLOAD: dict[str, Any] = {
    "id": _SAMPLE_COMPANY, "org_number": "769600-1234", "name": "Återbruket ekonomisk förening",
    "legal_form": "ekonomisk_forening", "municipality_code": "0180", "county_code": "01",
    "industries": ["second_hand"], "training_places": 5, "origin": "founded",
    "status": "pending", "qualifies_as_asf": True, "reserved_contract_eligible": True,
    "verification_level": "self_declared", "decision_note": "Underlag komplett",
    "deregistration_reason": "wound_up", "valid_until": "2029-01-01",
}

SAMPLE_PAYLOADS: dict[str, dict[str, Any]] = {
    reg.COMPANY_REGISTERED: _SAMPLE_COMPANY_PAYLOAD,
    reg.COMPANY_UPDATED: _SAMPLE_COMPANY_PAYLOAD,
    reg.COMPANY_VERIFIED: {**_SAMPLE_COMPANY_PAYLOAD, "status": "active"},
    reg.COMPANY_REJECTED: {**_SAMPLE_COMPANY_PAYLOAD, "status": "rejected"},
    reg.COMPANY_DEREGISTERED: {**_SAMPLE_COMPANY_PAYLOAD, "status": "deregistered"},
    reg.CONTRACT_AWARDED: {
        "id": "1b2c3d4e-5f60-4718-8293-a4b5c6d7e8f9", "company_id": _SAMPLE_COMPANY,
        "company_name": "Återbruket ekonomisk förening", "municipality_code": "0180",
        "title": "Lokalvård av förskolor", "procurement_reference": "KS 2026/123",
        "value_sek": 1_200_000, "start": "2026-03-01", "end": "2027-02-28", "reserved": True,
    },
    reg.LEARNING_EXAMPLE_SUBMITTED: {
        "id": "2c3d4e5f-6071-4829-93a4-b5c6d7e8f901", "municipality_code": "0180",
        "company_ids": [_SAMPLE_COMPANY], "title": "Från arbetsträning till anställning",
        "summary": "Kommunen och föreningen har byggt en gemensam väg till jobb.",
        "collaboration_types": ["work_training"],
        "contact": {"name": "Eva Exempel", "email": "eva@example.se"},
    },
    cw.PLACEMENTS_FLAGGED: {
        "company_id": _SAMPLE_COMPANY, "company_name": "Återbruket ekonomisk förening",
        "reason": "bankruptcy", "case_workers": ["cw-1"],
        "placements": [{"placement_id": "3d4e5f60-7182-4930-a4b5-c6d7e8f90123",
                        "participant_id": _SAMPLE_PARTICIPANT, "municipality_code": "0180",
                        "assigned_to": "cw-1"}],
    },
    cw.PLACEMENT_STARTED: {
        "placement_id": "3d4e5f60-7182-4930-a4b5-c6d7e8f90123",
        "participant_id": _SAMPLE_PARTICIPANT, "company_id": _SAMPLE_COMPANY,
        "municipality_code": "0180", "assigned_to": "cw-1", "kind": "work_training",
        "start": "2026-02-01",
    },
    cw.FOLLOW_UP_DUE: {
        "participant_id": _SAMPLE_PARTICIPANT, "municipality_code": "0180",
        "assigned_to": "cw-1", "offset_days": 90, "due_date": "2026-05-01",
        "employment_start": "2026-01-31",
    },
    cw.PARTICIPANT_EMPLOYED: {
        "participant_id": _SAMPLE_PARTICIPANT, "municipality_code": "0180",
        "assigned_to": "cw-1", "employment_form": "wage_subsidy", "start": "2026-02-01",
    },
    reg.COMPANY_VERIFICATION_EXPIRING: {
        **_SAMPLE_COMPANY_PAYLOAD, "status": "active", "verification_level": "verified",
        "valid_until": "2026-03-31", "days_left": 30,
    },
    reg.COMPANY_VERIFICATION_EXPIRED: {
        **_SAMPLE_COMPANY_PAYLOAD, "status": "active", "valid_until": "2026-03-31",
        "expired_on": "2026-03-31",
    },
    reg.LEARNING_EXAMPLE_PUBLISHED: {
        "id": "2c3d4e5f-6071-4829-93a4-b5c6d7e8f901", "municipality_code": "0180",
        "title": "Från arbetsträning till anställning", "decision": "published",
        "note": "Tack, exemplet finns nu i handboken.",
        "contact": {"name": "Eva Exempel", "email": "eva@example.se"},
    },
    reg.LEARNING_EXAMPLE_DECLINED: {
        "id": "2c3d4e5f-6071-4829-93a4-b5c6d7e8f901", "municipality_code": "0180",
        "title": "Från arbetsträning till anställning", "decision": "declined",
        "note": "Exemplet liknar ett som redan finns i handboken.",
        "contact": {"name": "Eva Exempel", "email": "eva@example.se"},
    },
    cw.PARTICIPANT_REASSIGNED: {
        "participant_id": _SAMPLE_PARTICIPANT, "municipality_code": "0180",
        "from_assigned_to": "cw-1", "assigned_to": "cw-2",
    },
    cw.PLAN_REVIEW_DUE: {
        "participant_id": _SAMPLE_PARTICIPANT, "municipality_code": "0180",
        "assigned_to": "cw-1", "review_date": "2026-04-15", "plan_version": 3,
    },
    cw.STATEMENT_ISSUED: {
        "statement_id": "4e5f6071-8293-4a4b-b5c6-d7e8f9012345", "company_id": _SAMPLE_COMPANY,
        "municipality_code": "0180", "month": "2026-02", "kind": "original",
        "totals": {"placements": 3, "days_present": 41, "hours_present": 246.5,
                   "absence_days": {"sick": 2, "leave": 1}, "amount_sek": 12325.0},
    },
}

SAMPLE_DIGEST: dict[str, Any] = {
    "day": "2026-02-01",
    "lines": [
        {"event_type": cw.PARTICIPANT_EMPLOYED, "municipality_code": "0180", "count": 3},
        {"event_type": cw.PARTICIPANT_EMPLOYED, "municipality_code": "1480", "count": 1},
    ],
}


def sample_context(template: str, base_url: str) -> dict[str, Any]:
    """What `template` is rendered with when it is checked or previewed without a payload:
    everything its event's sample gives a template (before any recipient's scope)."""
    if template == DIGEST_TEMPLATE:
        return digest_context(DigestSummary.model_validate(SAMPLE_DIGEST), base_url)
    event_type = TEMPLATE_EVENTS[template]
    payload = ROUTED_EVENTS[event_type].payload.model_validate(SAMPLE_PAYLOADS[event_type])
    names = {UUID(_SAMPLE_COMPANY): _SAMPLE_COMPANY_NAME}
    return facts_of(event_type, payload, base_url, names).context
