"""Runs last: no personal data given to casework during the whole session appears in any
event casework published or in any log line written (production JSON logging, DEBUG)."""

from __future__ import annotations

import asyncio
from typing import Any

from asf_testing import EventTap


async def test_no_personal_data_in_any_event_or_log_line(
    env: Any, refer: Any, case_worker: Any, move: Any, published: EventTap,
    log_lines: list[str], personal_data_used: list[str],
) -> None:
    headers = case_worker("0180")
    pid = (await refer(headers, given_name="Sista", family_name="Kontrollsson"))["id"]
    await move(pid, headers, "assessment")
    await published.wait_for(lambda bs: sum(b["aggregate_id"] == pid for b in bs) >= 2)
    await asyncio.sleep(0.5)  # whatever the relay still had
    events = [m.body.decode() for m in published.messages]
    secrets = {s for s in personal_data_used if s}
    assert len(events) > 10 and "Kontrollsson" in secrets
    assert any("participant referred" in line for line in log_lines)
    assert any(pid in line for line in log_lines)
    for secret in secrets:
        leaked_events = [e for e in events if secret in e]
        leaked_logs = [line for line in log_lines if secret in line]
        assert not leaked_events, (secret, leaked_events[:1])
        assert not leaked_logs, (secret, leaked_logs[:1])
