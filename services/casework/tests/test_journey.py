"""The whole journey over HTTP, with what reaches the broker: referral → assessment →
placement → employed → follow-ups, carrying only UUIDs and codes."""

from __future__ import annotations

import logging
import re
from datetime import date, timedelta
from typing import Any

import pytest

from asf_testing import event_tap


def _strings(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)] + [str(k) for k in value]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return [str(value)]


async def test_journey_events_carry_only_ids(
    env: Any, client: Any, registry: Any, refer: Any, move: Any, place: Any,
    case_worker: Any, identity_number: Any, broker_url: str,
    capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
    log_lines: list[str],
) -> None:
    caplog.set_level(logging.INFO)
    seen = len(log_lines)
    headers = case_worker("0180")
    company = await registry.active_company(places=3)
    number = identity_number()
    given, family = "Ingeborg", "Zetterqvist-Personsdotter"
    async with event_tap(broker_url, "casework.#") as tap:
        p = await refer(headers, given_name=given, family_name=family,
                        personal_identity_number=number, email="ingeborg.z@example.se",
                        phone="070-999 88 77")
        pid = p["id"]
        assert p["stage"] == "referred" and p["given_name"] == given
        assert p["personal_identity_number"] == number
        assert (await move(pid, headers, "assessment")).status_code == 200
        r = await place(pid, headers, company, hours_per_week=20)
        assert r.status_code == 201, r.text
        placement = r.json()
        start = date.today() - timedelta(days=400)
        r = await move(pid, headers, "employed", employment={
            "form": "wage_subsidy", "employer_company_id": str(company),
            "start": start.isoformat()})
        assert r.status_code == 200, r.text
        case = r.json()
        assert case["stage"] == "employed" and case["active_placement_ids"] == []
        assert case["employment"]["form"] == "wage_subsidy"
        assert "given_name" not in case
        assert await env.casework.sweep_follow_ups(date.today()) >= 3
        r = await client.post(f"/participants/{pid}/follow-ups",
                              json={"offset_days": 90, "still_employed": True}, headers=headers)
        assert r.status_code == 201, r.text
        r = await client.get(f"/participants/{pid}/timeline", headers=headers)
        assert r.status_code == 200
        kinds = [i["kind"] for i in r.json()["items"]]
        for kind in ("stage_changed", "placement_started", "placement_ended",
                     "employment_started", "follow_up_recorded", "follow_up_due"):
            assert kind in kinds
        wanted = {"casework.participant.referred", "casework.participant.stage_changed",
                  "casework.placement.started", "casework.placement.ended",
                  "casework.participant.employed", "casework.follow_up.due",
                  "casework.follow_up.recorded"}
        bodies = await tap.wait_for(
            lambda bs: wanted <= {b["event_type"] for b in bs if b["aggregate_id"] == pid}
            and len([b for b in bs if b["event_type"] == "casework.follow_up.due"
                     and b["aggregate_id"] == pid]) == 3)
    mine = [b for b in bodies if b["aggregate_id"] == pid]
    versions = sorted(b["aggregate_version"] for b in mine)
    assert versions == list(range(1, len(mine) + 1)), "each event carries its own version"
    assert placement["id"] in {b["payload"].get("placement_id") for b in mine}
    secrets = [given, family, number, number.replace("-", ""), number[2:], "ingeborg.z",
               "999 88 77"]
    uuid_or_code = re.compile(
        r"^([0-9a-f-]{36}|\d{4}|[a-z_.]+|\d+(\.\d+)?|True|False|None|\d{4}-\d\d-\d\d.*|cw-[0-9a-f]{8}"
        r"|casework.*|[a-z]+-[0-9a-f]+)$")
    for b in mine:
        text = str(b)
        for secret in secrets:
            assert secret not in text
        for s in _strings(b["payload"]):
            assert uuid_or_code.match(s), f"unexpected value in an event: {s!r}"
    out, err = capfd.readouterr()
    logs = "\n".join([out, err, *log_lines[seen:],
                      *(r.getMessage() + str(r.__dict__) for r in caplog.records)])
    assert pid in logs or "participant referred" in logs  # logging did happen
    for secret in secrets:
        assert secret not in logs
