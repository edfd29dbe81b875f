"""Outcome statistics and the CLI commands (seed, sweep)."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import pytest

from asf_testing import auth
from casework.workdays import Month

STATS_MUNICIPALITY = "0999"  # used by no other test, so the figures are exact


@pytest.fixture
def every_count_shown(env: Any) -> Iterator[None]:
    """STATS_MIN_GROUP = 1 for one test, so that the figures of a few cases can be checked
    exactly (suppression has its own tests: test_outcome_rules, tests/security)."""
    env.casework.stats_min_group = 1
    try:
        yield
    finally:
        env.casework.stats_min_group = env.settings.stats_min_group


async def test_outcomes(
    env: Any, client: Any, refer: Any, move: Any, place: Any, registry: Any,
    case_worker: Any, every_count_shown: None,
) -> None:
    headers = case_worker(STATS_MUNICIPALITY)
    company = await registry.active_company(places=10)
    today = date.today()
    await refer(case_worker("0180"))  # elsewhere: only in the all-municipality figures
    ids = [(await refer(headers))["id"] for _ in range(5)]
    a, b, c, d, _e = ids
    await move(a, headers, "assessment")
    await move(a, headers, "closed", exit_reason="studies")
    for pid in (b, c):
        await move(pid, headers, "assessment")
        assert (await place(pid, headers, company)).status_code == 201
    await move(b, headers, "employed", employment={
        "form": "wage_subsidy", "employer_company_id": str(company),
        "start": today.isoformat()})
    await move(b, headers, "closed")
    await move(c, headers, "employed", employment={
        "form": "unsubsidised", "employer_name": "Gruvan AB",
        "start": (today - timedelta(days=400)).isoformat()})
    await move(d, headers, "closed", exit_reason="dropped_out")
    async with env.pool.acquire() as conn:
        await conn.execute("UPDATE participants SET referred_at = now() - interval '500 days' "
                           "WHERE id = $1", uuid.UUID(c))
    await env.casework.sweep_follow_ups(today)
    url = f"/participants/{c}/follow-ups"
    await client.post(url, headers=headers, json={"offset_days": 90, "still_employed": True})
    await client.post(url, headers=headers, json={"offset_days": 180, "still_employed": False})

    analyst = auth("analyst", sub="analyst-1")
    r = await client.get("/stats/outcomes", headers=analyst,
                         params={"municipality_code": STATS_MUNICIPALITY})
    assert r.status_code == 200, r.text
    o = r.json()
    assert o["referred"] == 5
    assert o["by_stage"] == {"referred": 1, "assessment": 0, "in_training": 0, "employed": 1,
                             "closed": 3}
    assert o["employed_by_form"] == {"wage_subsidy": 1, "unsubsidised": 1}
    assert o["exits_by_reason"] == {"studies": 1, "employment": 1, "dropped_out": 1}
    assert (o["left_programme"], o["left_for_work"], o["left_for_studies"]) == (3, 1, 1)
    assert o["share_left_for_work_or_studies"] == round(2 / 3, 4)
    assert o["median_days_referral_to_employment"] == 50.0  # (0 + 100) / 2
    by_offset = {f["offset_days"]: f for f in o["follow_ups"]}
    assert (by_offset[90]["due"], by_offset[90]["recorded"], by_offset[90]["still_employed"],
            by_offset[90]["share_still_employed"]) == (1, 1, 1, 1.0)
    assert by_offset[180]["share_still_employed"] == 0.0
    assert by_offset[365]["recorded"] == 0 and by_offset[365]["share_still_employed"] is None
    for secret in ("Testa", "Testsson", c):
        assert secret not in r.text

    assert o["suppressed"] is False and o["min_group"] == 1
    # a period in the future has nothing yet
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    r = await client.get("/stats/outcomes", headers=headers, params={
        "from": next_month.isoformat()})
    assert r.status_code == 200 and r.json()["referred"] == 0
    assert r.json()["municipality_code"] == STATS_MUNICIPALITY
    # an analyst sees every municipality
    r = await client.get("/stats/outcomes", headers=analyst)
    assert r.json()["referred"] > 5 and r.json()["municipality_code"] is None


async def test_outcomes_access_and_input(client: Any, case_worker: Any) -> None:
    r = await client.get("/stats/outcomes", headers=case_worker("0180"),
                         params={"municipality_code": STATS_MUNICIPALITY})
    assert r.status_code == 403
    assert (await client.get("/stats/outcomes", headers=case_worker("0180"))).status_code == 200
    for role in ("auditor", "registry_officer", "company_rep"):
        assert (await client.get("/stats/outcomes", headers=auth(role))).status_code == 403
    for params in ({"municipality_code": "12"}, {"from": "nope"},
                   {"from": "2026-02-01", "to": "2026-01-31"}, {"from": "2026-02-02"},
                   {"to": "2026-02-27"}):
        r = await client.get("/stats/outcomes", headers=auth("analyst"), params=params)
        assert r.status_code == 422, params


async def _cli(env: Any, *args: str) -> str:
    environment = {**os.environ, "DATABASE_URL": env.settings.database_url,
                   "CASEWORK_DATA_KEY": env.settings.casework_data_key, "LOG_FORMAT": "json"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "casework.cli", *args, env=environment,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    return out.decode()


async def test_seed_demo_is_idempotent_and_covers_every_stage(
    env: Any, registry: Any
) -> None:
    await registry.active_company(places=30, name="AAA Demo-ASF")
    out = await _cli(env, "seed-demo", "--wait", "0")
    assert "10 created" in out
    out = await _cli(env, "seed-demo", "--wait", "0")
    assert "0 created" in out
    async with env.pool.acquire() as conn:
        stages = {r["stage"] for r in await conn.fetch(
            "SELECT stage FROM participants WHERE created_by = 'demo-case-worker'")}
        logged = await conn.fetchval(
            "SELECT count(*) FROM participants WHERE created_by = 'demo-case-worker'")
        plans = await conn.fetchval(
            "SELECT count(*) FROM plans pl JOIN participants p ON p.id = pl.participant_id "
            "WHERE p.created_by = 'demo-case-worker'")
        reported = await conn.fetchval(
            "SELECT count(DISTINCT a.placement_id) FROM attendance a "
            "WHERE a.reported_by = 'demo-company-rep'")
        closed = await conn.fetchval(
            "SELECT count(*) FROM statements WHERE month = $1",
            str(Month.of(date.today()).previous()))
    assert stages == {"referred", "assessment", "in_training", "employed", "closed"}
    assert logged == 10
    assert plans == reported >= 1 and closed >= 1  # each one in training


async def test_sweep_command(env: Any) -> None:
    out = await _cli(env, "sweep-follow-ups", "--today", "2000-01-01")
    assert "follow-ups announced: 0" in out
    out = await _cli(env, "sweep-plan-reviews", "--today", "2000-01-01")
    assert "plan reviews announced: 0" in out
    out = await _cli(env, "close-month", "--month", "1999-01")
    assert "statements issued: 0" in out
