"""Hostile HTTP input: schemathesis generates valid and invalid requests from each
service's OpenAPI document and sends them, with a token of the roles that may do most, to
the service running as its own process.

Strict: `--checks all` (server errors, status codes, content types, headers and bodies as
documented, valid data accepted, invalid data refused, unsupported methods, auth), every phase
(examples, coverage, fuzzing, stateful along the documents' links), zero failures. The only
refusals of schema-valid requests let through are the rules the documents cannot express,
named in one place: `exceptions.py` (loaded as schemathesis hooks); `schemathesis.toml` holds
the rest of its settings. Casework's `/stream` (an event stream that stays open until the
token expires) is left out: a request to it never ends within a timeout.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from pathlib import Path

import pytest

from asf_contracts.topology import ServiceQueues
from asf_testing import delete_queues, fresh_database, service_process, token

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
MAX_EXAMPLES = 10
"""Per operation and phase; the three runs take about 2 minutes together on 2 cores."""


def schemathesis_run(base_url: str, headers: dict[str, str], report: Path,
                     max_examples: int = MAX_EXAMPLES, exclude_paths: tuple[str, ...] = (),
                     ) -> subprocess.CompletedProcess[str]:
    st = shutil.which("st", path=str(Path(sys.executable).parent)) or "st"
    args = [st, "--config-file", str(HERE / "schemathesis.toml"), "run",
            f"{base_url}/openapi.json", "--checks", "all",
            "--phases", "examples,coverage,fuzzing,stateful",
            "--max-examples", str(max_examples), "--seed", "20261128",
            "--request-timeout", "20", "--suppress-health-check", "all", "--no-color",
            "--report", "junit", "--report-junit-path", str(report)]
    for name, value in headers.items():
        args += ["--header", f"{name}: {value}"]
    for path in exclude_paths:
        args += ["--exclude-path", path]
    env = {**os.environ, "SCHEMATHESIS_HOOKS": str(HERE / "exceptions.py"),
           "ASF_EXCEPTIONS_LOG": str(report.with_suffix(".exceptions"))}
    return subprocess.run(args, capture_output=True, text=True, timeout=540, check=False,
                          env=env)


def exceptions_used(report: Path) -> Counter[str]:
    """How often each named exception let a refusal through (printed with -s)."""
    log = report.with_suffix(".exceptions")
    lines = log.read_text().splitlines() if log.exists() else []
    used = Counter(json.loads(line)["exception"] for line in lines)
    print(f"{report.parent.name}: exceptions used {dict(used)}")
    return used


async def seed_demo(module: str, env: dict[str, str], *extra: str) -> None:
    """Give the generated requests real data to read and change."""
    await asyncio.to_thread(
        subprocess.run, [sys.executable, "-m", module, "seed-demo", *extra],
        env={**os.environ, "JWT_SECRET": "unused-here", **env}, check=True,
        capture_output=True,
    )


@pytest.mark.timeout(600)
async def test_registry_survives_generated_requests(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    migrations = ROOT / "services" / "registry" / "migrations"
    officer = token(["registry_officer", "company_rep", "analyst"], sub="fuzzer")
    async with fresh_database(postgres_url, "registry_fuzz", migrations) as dsn:
        # the public register's rate limit is documented (429) and tried in tests/security;
        # here it would turn most generated requests to /public away unread
        env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "PUBLIC_RATE_LIMIT": "1000000"}
        await seed_demo("registry.cli", env)
        async with service_process("registry.cli", env, tmp_path / "registry.log") as proc:
            result = await asyncio.to_thread(
                schemathesis_run, proc.base_url, {"Authorization": f"Bearer {officer}"},
                tmp_path / "junit.xml")
            server_errors = [ln for ln in proc.log().splitlines() if "unhandled error" in ln]
    exceptions_used(tmp_path / "junit.xml")
    assert result.returncode == 0, result.stdout[-6000:]
    assert server_errors == []


@pytest.mark.timeout(600)
async def test_casework_survives_generated_requests(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    migrations = ROOT / "services" / "casework" / "migrations"
    caller = token(["case_worker", "analyst", "auditor", "company_rep"], sub="fuzzer",
                   municipality_code="0180", company_id=str(uuid.uuid4()))
    async with fresh_database(postgres_url, "casework_fuzz", migrations) as dsn:
        env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url,
               "CASEWORK_DATA_KEY": "ZnV6ei1rZXktZnV6ei1rZXktZnV6ei1rZXktZnV6eiE=",
               "QUEUE_NAMESPACE": "fuzz-", "FOLLOW_UP_SWEEP_INTERVAL": "0",
               "PLAN_REVIEW_SWEEP_INTERVAL": "0", "STATEMENT_SWEEP_INTERVAL": "0"}
        await seed_demo("casework.cli", env, "--wait", "0")
        async with service_process("casework.cli", env, tmp_path / "casework.log") as proc:
            result = await asyncio.to_thread(
                schemathesis_run, proc.base_url, {"Authorization": f"Bearer {caller}"},
                tmp_path / "junit.xml", exclude_paths=("/stream",))
            server_errors = [ln for ln in proc.log().splitlines() if "unhandled error" in ln]
        await delete_queues(broker_url, ServiceQueues(service="fuzz-casework"))
    exceptions_used(tmp_path / "junit.xml")
    assert result.returncode == 0, result.stdout[-6000:]
    assert server_errors == []


@pytest.mark.timeout(600)
async def test_notifications_survives_generated_requests(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    migrations = ROOT / "services" / "notifications" / "migrations"
    caller = token(["analyst", "registry_officer"], sub="fuzzer")
    async with fresh_database(postgres_url, "notifications_fuzz", migrations) as dsn:
        env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "QUEUE_NAMESPACE": "fuzz-",
               "SMTP_HOST": "127.0.0.1", "SMTP_PORT": "9", "DIGEST_ENABLED": "false"}
        await seed_demo("notifications.cli", env)
        async with service_process("notifications.cli", env,
                                   tmp_path / "notifications.log") as proc:
            result = await asyncio.to_thread(
                schemathesis_run, proc.base_url, {"Authorization": f"Bearer {caller}"},
                tmp_path / "junit.xml")
            server_errors = [ln for ln in proc.log().splitlines() if "unhandled error" in ln]
        await delete_queues(broker_url, ServiceQueues(service="fuzz-notifications"))
    exceptions_used(tmp_path / "junit.xml")
    assert result.returncode == 0, result.stdout[-6000:]
    assert server_errors == []
