"""The fault run: all three services as real processes, a stream of state changes over HTTP,
and faults injected while it flows; afterwards, a count of what was lost or duplicated.

    uv run python tests/faults/run.py --changes 5000 --smtp-outage 30    # the full form
    uv run pytest tests/faults -m faults -q -p no:cacheprovider          # the short form

What it does, in order:

1. Creates three fresh databases, a RabbitMQ virtual host of its own (so no other test's
   events reach these consumers; queue names are namespaced as well), and a real SMTP
   server in this process (aiosmtpd) that records every message by Message-ID.
2. Starts registry, casework and notifications as `python -m <svc>.cli serve` processes on
   fixed ports (a killed service comes back on the same port).
3. Pushes state changes over HTTP from several concurrent clients: companies registered,
   verified, rejected, deregistered; participants referred, assessed, placed at companies,
   employed (with an employment start far enough back that a follow-up falls due at once),
   placements ended, cases closed. Events flow registry → casework → notifications, and
   notifications emails company contacts, the registry officer and the case workers.
4. Meanwhile injects: kill -9 of each service (and a restart), a RabbitMQ restart, a
   PostgreSQL restart, and the SMTP server refusing connections for a while.
5. Waits until the system is quiet, then checks the client's knowledge against every
   database, every outbox against every inbox, and every expected email against what the
   SMTP server received.

The load client is honest about uncertain outcomes: when a request fails without an answer
(connection refused or reset, a 5xx during a restart) it finds out whether the change
happened (a GET of the resource, or the retried create answering 409 with the existing id)
before it counts it or tries again, so no change is counted twice or missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import asyncpg
import httpx
import orjson

from asf_contracts import casework as cw
from asf_contracts import registry as reg
from asf_contracts.topology import ServiceQueues
from asf_kit import dlq
from asf_testing import (
    DATA_KEY,
    JWT_TEST_SECRET,
    SmtpServer,
    delete_queues,
    free_port,
    fresh_database,
    identity_number,
    org_number,
    token,
)

ROOT = Path(__file__).resolve().parents[2]
MIGRATIONS = {name: ROOT / "services" / name / "migrations"
              for name in ("registry", "casework", "notifications")}
OFFICER_EMAIL = "registry-officer@faults.example.se"
MUNICIPALITIES = ("0180", "1480")

COMPANY_EVENTS = {reg.COMPANY_REGISTERED, reg.COMPANY_UPDATED, reg.COMPANY_VERIFIED,
                  reg.COMPANY_REJECTED, reg.COMPANY_DEREGISTERED}
NOTIFIED_REGISTRY_EVENTS = COMPANY_EVENTS | {reg.CONTRACT_AWARDED, reg.LEARNING_EXAMPLE_SUBMITTED}
NOTIFIED_CASEWORK_EVENTS = {cw.PLACEMENTS_FLAGGED, cw.PLACEMENT_STARTED, cw.FOLLOW_UP_DUE,
                            cw.PARTICIPANT_EMPLOYED}
COMPANY_TEMPLATES = {reg.COMPANY_VERIFIED: "company_verified",
                     reg.COMPANY_REJECTED: "company_rejected",
                     reg.COMPANY_DEREGISTERED: "company_deregistered"}


def log(msg: str) -> None:
    print(f"[faults {time.strftime('%H:%M:%S')}] {msg}", flush=True)


# --- what the run pushes and what it finds ----------------------------------------------------


@dataclass
class Figures:
    changes: Counter[str] = field(default_factory=Counter)
    faults: list[str] = field(default_factory=list)
    server_errors: int = 0
    """HTTP 5xx answers the client received."""
    transport_errors: int = 0
    """Requests that got no answer at all (refused, reset, timed out)."""
    uncertain: int = 0
    uncertain_happened: int = 0
    """Uncertain outcomes that turned out to have happened (counted once, not retried)."""
    refused_by_rules: Counter[str] = field(default_factory=Counter)
    events_published: int = 0
    events_lost: int = 0
    events_unpublished: int = 0
    duplicate_effects: int = 0
    read_model_mismatches: int = 0
    state_mismatches: int = 0
    unknown_changes: int = 0
    emails_expected: int = 0
    emails_sent_once: int = 0
    emails_lost: int = 0
    emails_duplicated: int = 0
    """Two emails with different Message-IDs for one (event, recipient, template)."""
    emails_resent_same_id: int = 0
    """The same Message-ID received twice: SMTP's own at-least-once (crash after the server
    accepted, before the delivery was marked sent). Reported apart, not a failure."""
    emails_unexplained: int = 0
    parked: int = 0
    redeliveries_absorbed: int = 0
    """Messages the consumers saw again and their inbox skipped (since each one's last
    start: `messages_consumed_total{outcome="duplicate"}`)."""
    problems: list[str] = field(default_factory=list)

    @property
    def changes_pushed(self) -> int:
        return sum(self.changes.values())

    def problem(self, text: str) -> None:
        if len(self.problems) < 60:
            self.problems.append(text)

    def failures(self) -> list[str]:
        """What makes the run fail; the SMTP same-Message-ID resends do not."""
        checks = {
            "events lost": self.events_lost, "events never published": self.events_unpublished,
            "duplicate effects": self.duplicate_effects,
            "read-model mismatches": self.read_model_mismatches,
            "state changes missing or different": self.state_mismatches,
            "changes the client does not know of": self.unknown_changes,
            "emails lost": self.emails_lost, "emails duplicated": self.emails_duplicated,
            "unexplained emails": self.emails_unexplained,
            "messages parked in a dead-letter queue": self.parked,
        }
        return [f"{name}: {n}" for name, n in checks.items() if n]

    def report(self) -> str:
        lines = [
            "fault run figures",
            f"  changes pushed        {self.changes_pushed}  "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.changes.items()))})",
            f"  faults injected       {len(self.faults)}: {'; '.join(self.faults)}",
            f"  server errors seen    {self.server_errors} HTTP 5xx, "
            f"{self.transport_errors} requests without an answer",
            f"  uncertain outcomes    {self.uncertain} (of which had happened: "
            f"{self.uncertain_happened})",
            f"  refused by rules      {sum(self.refused_by_rules.values())} "
            f"({', '.join(f'{k} {v}' for k, v in sorted(self.refused_by_rules.items()))})",
            f"  events published      {self.events_published}",
            f"  events lost           {self.events_lost} (never published: "
            f"{self.events_unpublished})",
            f"  duplicate effects     {self.duplicate_effects} (redeliveries the inboxes "
            f"absorbed: {self.redeliveries_absorbed}, counted since each consumer's last start)",
            f"  read-model mismatches {self.read_model_mismatches}",
            f"  state mismatches      {self.state_mismatches} (unknown changes: "
            f"{self.unknown_changes})",
            f"  emails expected       {self.emails_expected} (sent once: "
            f"{self.emails_sent_once})",
            f"  emails lost           {self.emails_lost}",
            f"  emails duplicated     {self.emails_duplicated} (different Message-IDs)",
            f"  emails resent         {self.emails_resent_same_id} (same Message-ID, "
            "SMTP at-least-once)",
            f"  emails unexplained    {self.emails_unexplained}",
            f"  dead-lettered         {self.parked}",
        ]
        lines += [f"  ! {p}" for p in self.problems]
        return "\n".join(lines)


@dataclass
class KnownCompany:
    id: str
    org_number: str
    email: str
    municipality: str
    status: str = "pending"
    version: int = 1


@dataclass
class KnownParticipant:
    id: str
    worker: str
    municipality: str
    stage: str = "referred"
    placements: dict[str, str] = field(default_factory=dict)
    """placement id → `active` or `ended`."""


@dataclass
class Knowledge:
    """What the client knows happened: only changes it saw succeed, or verified."""

    companies: dict[str, KnownCompany] = field(default_factory=dict)
    participants: dict[str, KnownParticipant] = field(default_factory=dict)

    def active_companies(self) -> list[KnownCompany]:
        return [c for c in self.companies.values() if c.status == "active"]


# --- processes ----------------------------------------------------------------------------------


def _die_with_parent() -> None:
    """A service outlives no run, even one killed hard (Linux: PR_SET_PDEATHSIG)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)


class ServiceProc:
    """A service as its own process on a fixed port, which can be killed and started again."""

    def __init__(self, name: str, env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "APP_ENV": "development", "JWT_SECRET": JWT_TEST_SECRET,
                    "LOG_FORMAT": "json",
                    "LOG_LEVEL": "WARNING", "HOST": "127.0.0.1", "PORT": str(self.port), **env}
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as out:
            out.write(f"\n=== start {self.starts} ===\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", f"{self.name}.cli", "serve"], env=self.env,
                stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
            )

    async def ready(self, within: float = 90.0) -> None:
        deadline = time.monotonic() + within
        last = ""
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                if self.process is not None and self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}: "
                                       f"{self.tail()}")
                try:
                    r = await client.get(f"{self.base_url}/readyz")
                    if r.status_code == 200:
                        return
                    last = r.text
                except httpx.HTTPError as e:
                    last = repr(e)
                await asyncio.sleep(0.25)
        raise RuntimeError(f"{self.name} not ready within {within} s: {last}\n{self.tail()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    async def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                await asyncio.to_thread(self.process.wait, 30)
            except subprocess.TimeoutExpired:
                self.process.kill()

    def tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return ""


async def run_command(*args: str, limit: float = 120.0) -> str:
    proc = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), limit)
    text = out.decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(args)} failed ({proc.returncode}): {text[-2000:]}")
    return text


def fault_tools_missing() -> list[str]:
    """The commands the run needs to restart the broker and the database on this machine."""
    missing = [c for c in ("rabbitmqctl", "pg_ctlcluster") if shutil.which(c) is None]
    if not Path("/etc/postgresql").is_dir():
        missing.append("/etc/postgresql")
    return missing


async def restart_rabbitmq() -> None:
    await run_command("rabbitmqctl", "stop_app")
    await run_command("rabbitmqctl", "start_app")
    await run_command("rabbitmqctl", "await_startup", limit=120)


async def restart_postgresql() -> None:
    versions = sorted(os.listdir("/etc/postgresql"))
    await run_command("pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main",
                      "restart")


@contextlib.asynccontextmanager
async def own_vhost(broker_url: str) -> AsyncIterator[str]:
    """A RabbitMQ virtual host for this run alone, deleted afterwards."""
    name = f"faults-{uuid.uuid4().hex[:8]}"
    await run_command("rabbitmqctl", "add_vhost", name)
    try:
        await run_command("rabbitmqctl", "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
        parts = urlsplit(broker_url)
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        with contextlib.suppress(Exception):
            await run_command("rabbitmqctl", "delete_vhost", name)


# --- the load client ----------------------------------------------------------------------------


class Unresolved(Exception):
    """The outcome of a change could not be found out in time."""


def headers_of(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


class LoadClient:
    """Pushes state changes and keeps `Knowledge` honest under faults."""

    def __init__(self, urls: dict[str, str], figures: Figures, target: int,
                 workers: list[tuple[str, str]], rate: float = 0.0) -> None:
        self.rate = rate
        self.started = time.monotonic()
        self.urls = urls
        self.figures = figures
        self.target = target
        self.known = Knowledge()
        self.workers = workers
        self.rep = headers_of(token("company_rep", sub="faults-rep"))
        self.officer = headers_of(token("registry_officer", sub="faults-officer"))
        self.case_worker = {sub: headers_of(token("case_worker", sub=sub, municipality_code=m))
                            for sub, m in workers}
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        self.done = asyncio.Event()
        self.after_faults = 1 << 62
        """Changes to reach once the faults are over; set by `inject_faults`."""

    @property
    def pushed(self) -> int:
        return self.figures.changes_pushed

    async def pace(self) -> None:
        """Keep to `rate` changes a second (when set), so the faults land inside the load."""
        if self.rate:
            ahead = self.pushed / self.rate - (time.monotonic() - self.started)
            if ahead > 0:
                await asyncio.sleep(ahead + random.random() * 0.05)

    async def close(self) -> None:
        await self.client.aclose()

    # -- one request, and finding out what an uncertain one did --------------------------

    async def _send(self, method: str, url: str, **kw: Any) -> httpx.Response | None:
        """The answer, or None when there was none (counted as a transport error)."""
        try:
            r = await self.client.request(method, url, **kw)
        except httpx.TransportError:
            self.figures.transport_errors += 1
            return None
        if r.status_code >= 500:
            self.figures.server_errors += 1
        return r

    async def _get(self, url: str, headers: dict[str, str]) -> dict[str, Any]:
        """GET until the service answers 200 (it may be restarting)."""
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            r = await self._send("GET", url, headers=headers)
            if r is not None and r.status_code == 200:
                data: dict[str, Any] = r.json()
                return data
            await asyncio.sleep(0.3)
        raise Unresolved(f"GET {url} never answered")

    async def change(
        self, kind: str, method: str, url: str, headers: dict[str, str], body: Any,
        happened: Callable[[], Awaitable[Any]] | None = None,
        created: Callable[[httpx.Response], Any] | None = None,
    ) -> Any:
        """Make one change; returns what tells the caller it happened (the response JSON,
        or what `happened`/`created` found), or None when a rule refused it.

        `happened()` answers, after an uncertain attempt, whether the change is in the
        database (returning a truthy value) or not (None). A create instead passes
        `created(response)`, which reads a duplicate 409 as "an earlier attempt made it".
        """
        await self.pace()
        uncertain = False
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            r = await self._send(method, url, headers=headers, json=body)
            if r is not None and r.status_code < 300:
                self.figures.changes[kind] += 1
                return r.json() if r.content else {}
            if r is not None and r.status_code < 500:
                if uncertain and created is not None:
                    found = created(r)
                    if found is not None:
                        self.figures.uncertain_happened += 1
                        self.figures.changes[kind] += 1
                        return found
                if uncertain and happened is not None:
                    found = await happened()
                    if found is not None:
                        self.figures.uncertain_happened += 1
                        self.figures.changes[kind] += 1
                        return found
                self.figures.refused_by_rules[f"{kind} {r.status_code}"] += 1
                return None
            # No answer, or a 5xx: did the change happen?
            if not uncertain:
                self.figures.uncertain += 1
            uncertain = True
            if happened is not None:
                found = await happened()
                if found is not None:
                    self.figures.uncertain_happened += 1
                    self.figures.changes[kind] += 1
                    return found
            await asyncio.sleep(0.3 + random.random() * 0.3)
        raise Unresolved(f"{kind}: {method} {url} never got an answer")

    # -- registry ---------------------------------------------------------------------------

    async def register_company(self) -> KnownCompany | None:
        org = org_number()
        municipality = random.choice(MUNICIPALITIES)
        email = f"company-{org.replace('-', '')}@faults.example.se"
        body = {
            "org_number": org, "name": f"Felföretaget {org}", "legal_form": "ekonomisk_forening",
            "municipality_code": municipality, "industries": ["cleaning"],
            "training_places": 40, "origin": "existing",
            "contacts": [{"name": "Kontakt", "role": "manager", "email": email}],
            "workforce": {"as_of": "2026-01-01", "employees_total": 5, "engaged_total": 10,
                          "target_group_engaged": 5},
            "criteria": {"runs_business": True, "integration_purpose": True,
                         "participation": {"form": "ownership"}, "reinvests_profits": True,
                         "independent_of_public_sector": True},
        }

        def duplicate(r: httpx.Response) -> dict[str, Any] | None:
            if r.status_code == 409 and r.json().get("existing_id"):
                return {"id": r.json()["existing_id"]}
            return None

        out = await self.change("company registered", "POST",
                                f"{self.urls['registry']}/companies", self.rep, body,
                                created=duplicate)
        if out is None:
            return None
        company = KnownCompany(out["id"], org, email, municipality)
        self.known.companies[company.id] = company
        return company

    async def _company_becomes(self, company: KnownCompany, kind: str, path: str,
                               body: dict[str, Any], status: str) -> bool:
        url = f"{self.urls['registry']}/companies/{company.id}"

        async def happened() -> Any:
            doc = await self._get(url, self.officer)
            return doc if doc["status"] == status else None

        out = await self.change(kind, "POST", f"{url}/{path}", self.officer, body,
                                happened=happened)
        if out is None:
            return False
        company.status = status
        company.version += 1
        return True

    async def verify(self, company: KnownCompany) -> bool:
        return await self._company_becomes(company, "company verified", "verification",
                                           {"decision": "verified", "note": "ok"}, "active")

    async def reject(self, company: KnownCompany) -> bool:
        return await self._company_becomes(company, "company rejected", "verification",
                                           {"decision": "rejected", "note": "nej"}, "rejected")

    async def deregister(self, company: KnownCompany) -> bool:
        company.status = "deregistering"  # no new placements chosen while this runs
        ok = await self._company_becomes(company, "company deregistered", "deregistration",
                                         {"reason": "wound_up"}, "deregistered")
        if not ok:
            company.status = "active"
        return ok

    # -- casework ---------------------------------------------------------------------------

    async def _participant(self, p: KnownParticipant) -> dict[str, Any]:
        return await self._get(f"{self.urls['casework']}/participants/{p.id}",
                               self.case_worker[p.worker])

    async def refer(self, worker: str, municipality: str) -> KnownParticipant | None:
        body = {"given_name": "Fel", "family_name": "Testsson",
                "personal_identity_number": identity_number(),
                "referral_source": random.choice(["social_services", "employment_service"])}

        def duplicate(r: httpx.Response) -> dict[str, Any] | None:
            if r.status_code == 409 and r.json().get("existing_id"):
                return {"id": r.json()["existing_id"]}
            return None

        out = await self.change("participant referred", "POST",
                                f"{self.urls['casework']}/participants",
                                self.case_worker[worker], body, created=duplicate)
        if out is None:
            return None
        p = KnownParticipant(out["id"], worker, municipality)
        self.known.participants[p.id] = p
        return p

    async def transition(self, p: KnownParticipant, to: str, **extra: Any) -> bool:
        async def happened() -> Any:
            doc = await self._participant(p)
            return doc if doc["stage"] == to else None

        out = await self.change(f"case {to}", "POST",
                                f"{self.urls['casework']}/participants/{p.id}/transitions",
                                self.case_worker[p.worker], {"to": to, **extra},
                                happened=happened)
        if out is None:
            return False
        p.stage = to
        if to in ("employed", "closed"):
            for pid, state in p.placements.items():
                if state == "active":
                    p.placements[pid] = "ended"
        return True

    async def place(self, p: KnownParticipant, company: KnownCompany) -> str | None:
        async def happened() -> Any:
            doc = await self._participant(p)
            new = [x for x in doc["active_placement_ids"] if x not in p.placements]
            return {"id": new[0]} if new else None

        body = {"company_id": company.id, "kind": "work_training",
                "start": date.today().isoformat()}
        out = await self.change("placement started", "POST",
                                f"{self.urls['casework']}/participants/{p.id}/placements",
                                self.case_worker[p.worker], body, happened=happened)
        if out is None:
            return None
        p.placements[out["id"]] = "active"
        p.stage = "in_training"
        return str(out["id"])

    async def end_placement(self, p: KnownParticipant, placement_id: str) -> bool:
        async def happened() -> Any:
            doc = await self._participant(p)
            return doc if placement_id not in doc["active_placement_ids"] else None

        out = await self.change("placement ended", "POST",
                                f"{self.urls['casework']}/placements/{placement_id}/end",
                                self.case_worker[p.worker], {"reason": "completed"},
                                happened=happened)
        if out is None:
            return False
        p.placements[placement_id] = "ended"
        return True

    # -- the mix ----------------------------------------------------------------------------

    async def company_flow(self) -> None:
        company = await self.register_company()
        if company is None or not self.more():
            return
        if random.random() < 0.85:
            await self.verify(company)
        else:
            await self.reject(company)

    async def participant_flow(self, worker: str, municipality: str) -> None:
        p = await self.refer(worker, municipality)
        if p is None or not await self.transition(p, "assessment"):
            return
        placement = None
        for _ in range(8):
            active = self.known.active_companies()
            if not active:
                break
            placement = await self.place(p, random.choice(active))
            if placement is not None:
                break
            await asyncio.sleep(0.3)  # casework may not have heard of the company yet
        if placement is None:
            await self.transition(p, "closed", exit_reason="other_programme")
            return
        r = random.random()
        if r < 0.5:
            start = (date.today() - timedelta(days=100)).isoformat()
            employed = await self.transition(p, "employed", employment={
                "form": "wage_subsidy", "employer_name": "Arbetsgivaren AB", "start": start})
            if employed and random.random() < 0.4:
                await self.transition(p, "closed")
        elif r < 0.75:
            await self.end_placement(p, placement)
        else:
            await self.transition(p, "closed", exit_reason="dropped_out")

    def more(self) -> bool:
        """Until the target is reached, every fault has been injected, and the system has
        taken a little more load after the last one."""
        return self.pushed < max(self.target, self.after_faults)

    async def worker(self, sub: str, municipality: str) -> None:
        while self.more():
            r = random.random()
            active = self.known.active_companies()
            if len(active) < 4 or r < 0.2:
                await self.company_flow()
            elif r < 0.27 and len(active) > 8:
                await self.deregister(random.choice(active))
            else:
                await self.participant_flow(sub, municipality)

    async def run(self, concurrency: int) -> None:
        try:
            async with asyncio.TaskGroup() as group:  # one worker failing stops them all
                for i in range(concurrency):
                    group.create_task(self.worker(*self.workers[i % len(self.workers)]))
        finally:
            self.done.set()


# --- the faults ---------------------------------------------------------------------------------


@dataclass
class Fault:
    at: float
    """Fraction of the target changes after which it is injected."""
    name: str
    inject: Callable[[], Awaitable[None]]


async def inject_faults(client: LoadClient, faults: list[Fault], figures: Figures) -> None:
    for fault in faults:
        while (client.pushed < fault.at * client.target  # noqa: ASYNC110
               and not client.done.is_set()):
            await asyncio.sleep(0.05)
        started = time.monotonic()
        log(f"injecting {fault.name} after {client.pushed} changes")
        await fault.inject()
        figures.faults.append(f"{fault.name} @{client.pushed} ({time.monotonic() - started:.1f} s)")
        log(f"{fault.name} done; {client.pushed} changes so far")
    client.after_faults = client.pushed + max(client.target // 20, 20)


# --- checking -----------------------------------------------------------------------------------


async def fetch(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(sql, *args)
    finally:
        await conn.close()


async def queue_depth(broker_url: str, names: list[str]) -> int:
    connection = await aio_pika.connect(broker_url)
    try:
        total = 0
        for name in names:
            channel = await connection.channel()
            q = await channel.declare_queue(name, passive=True)
            total += q.declaration_result.message_count or 0
            await channel.close()
        return total
    finally:
        await connection.close()


async def wait_quiet(dbs: dict[str, str], broker_url: str, queues: list[ServiceQueues],
                    within: float) -> bool:
    """Until nothing is left to publish, consume, announce or send, and the counts stay put."""
    deadline = time.monotonic() + within
    previous: tuple[Any, ...] | None = None
    steady = 0
    while time.monotonic() < deadline:
        try:
            unpublished = sum([
                (await fetch(dbs[s], "SELECT count(*) AS n FROM outbox "
                                     "WHERE published_at IS NULL"))[0]["n"]
                for s in ("registry", "casework")])
            due = (await fetch(dbs["casework"], """
                SELECT count(*) AS n FROM follow_ups
                WHERE due_date <= current_date AND due_notified_at IS NULL
                  AND cancelled_at IS NULL"""))[0]["n"]
            sending = (await fetch(dbs["notifications"], """
                SELECT count(*) AS n FROM deliveries
                WHERE status IN ('pending', 'sending', 'retrying')"""))[0]["n"]
            inboxes = tuple([
                (await fetch(dbs[s], "SELECT count(*) AS n FROM inbox"))[0]["n"]
                for s in ("casework", "notifications")])
            depth = await queue_depth(broker_url, [n for q in queues for n in (q.main, q.retry)])
        except (OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPError) as e:
            log(f"quiet check failed: {e!r}")
            await asyncio.sleep(1)
            continue
        state = (unpublished, due, sending, inboxes, depth)
        steady = steady + 1 if state == previous and not (
            unpublished or due or sending or depth) else 0
        previous = state
        if steady >= 4:
            return True
        await asyncio.sleep(1.0)
    log(f"not quiet within {within} s: unpublished, due, sending, inboxes, queued = {previous}")
    return False


def _body(row: asyncpg.Record) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads(bytes(row["body"]))
    return data


async def check(figures: Figures, client: LoadClient, dbs: dict[str, str], broker_url: str,
                queues: dict[str, ServiceQueues], smtp: SmtpServer,
                workers: list[tuple[str, str]]) -> None:
    known = client.known
    # 1. Every change the client knows of is in its database, and nothing else is.
    companies = {str(r["id"]): r for r in await fetch(
        dbs["registry"], "SELECT id, status, version, training_places FROM companies")}
    for c in known.companies.values():
        row = companies.get(c.id)
        if row is None or row["status"] != c.status or row["version"] != c.version:
            figures.state_mismatches += 1
            figures.problem(f"company {c.id}: client knows {c.status} v{c.version}, registry "
                            f"has {row and (row['status'], row['version'])}")
    figures.unknown_changes += len(set(companies) - set(known.companies))
    participants = {str(r["id"]): r for r in await fetch(
        dbs["casework"], "SELECT id, stage FROM participants")}
    placements = {str(r["id"]): r for r in await fetch(
        dbs["casework"], "SELECT id, participant_id, status FROM placements")}
    known_placements: dict[str, str] = {}
    for p in known.participants.values():
        row = participants.get(p.id)
        if row is None or row["stage"] != p.stage:
            figures.state_mismatches += 1
            figures.problem(f"participant {p.id}: client knows {p.stage}, casework has "
                            f"{row and row['stage']}")
        known_placements.update(p.placements)
    for pid, state in known_placements.items():
        row = placements.get(pid)
        if row is None or row["status"] != state:
            figures.state_mismatches += 1
            figures.problem(f"placement {pid}: client knows {state}, casework has "
                            f"{row and row['status']}")
    figures.unknown_changes += len(set(participants) - set(known.participants))
    figures.unknown_changes += len(set(placements) - set(known_placements))

    # 2. Every event published, and applied once by each consumer.
    registry_out = await fetch(dbs["registry"],
                               "SELECT event_id, event_type, published_at, body FROM outbox")
    casework_out = await fetch(dbs["casework"],
                               "SELECT event_id, event_type, published_at, body FROM outbox")
    figures.events_published = sum(r["published_at"] is not None
                                   for r in [*registry_out, *casework_out])
    figures.events_unpublished = sum(r["published_at"] is None
                                     for r in [*registry_out, *casework_out])
    inbox = {s: {r["event_id"] for r in await fetch(dbs[s], "SELECT event_id FROM inbox")}
             for s in ("casework", "notifications")}
    wanted = {
        "casework": {r["event_id"] for r in registry_out if r["event_type"] in COMPANY_EVENTS},
        "notifications": {r["event_id"] for r in registry_out
                          if r["event_type"] in NOTIFIED_REGISTRY_EVENTS}
        | {r["event_id"] for r in casework_out if r["event_type"] in NOTIFIED_CASEWORK_EVENTS},
    }
    for service, ids in wanted.items():
        missing = ids - inbox[service]
        figures.events_lost += len(missing)
        for e in list(missing)[:5]:
            figures.problem(f"event {e} never applied by {service}")
        foreign = inbox[service] - ids
        if foreign:
            figures.problem(f"{service} applied {len(foreign)} events nobody here published")
    flagged = Counter(_body(r)["aggregate_id"] for r in casework_out
                      if r["event_type"] == cw.PLACEMENTS_FLAGGED)
    for company_id, n in flagged.items():
        if n > 1:
            figures.duplicate_effects += n - 1
            figures.problem(f"placements at company {company_id} flagged {n} times")
    # Read models follow the registry.
    for service, columns in (("casework", "status, version, training_places"),
                             ("notifications", "status, version")):
        model = {str(r["id"]): r for r in await fetch(
            dbs[service], f"SELECT id, {columns} FROM companies")}
        for cid, row in companies.items():
            mine = model.get(cid)
            fields_ = columns.split(", ")
            if mine is None or any(mine[f] != row[f] for f in fields_):
                figures.read_model_mismatches += 1
                figures.problem(f"{service} read model of {cid}: "
                                f"{mine and [mine[f] for f in fields_]} vs registry "
                                f"{[row[f] for f in fields_]}")

    # 3. Every expected email sent once.
    contact_of: dict[str, list[str]] = {}
    for r in registry_out:
        if r["event_type"] == reg.COMPANY_REGISTERED:
            body = _body(r)
            contact_of[body["payload"]["id"]] = [c["email"] for c in body["payload"]["contacts"]
                                                 if c.get("email")]
    worker_email = {sub: worker_address(sub) for sub, _ in workers}
    expected: set[tuple[str, str, str]] = set()
    for r in [*registry_out, *casework_out]:
        body, eid, etype = _body(r), str(r["event_id"]), r["event_type"]
        payload = body["payload"]
        if etype == reg.COMPANY_REGISTERED:
            expected.add((eid, OFFICER_EMAIL, "company_registered"))
            expected |= {(eid, e, "company_registered_receipt") for e in contact_of[payload["id"]]}
        elif etype in COMPANY_TEMPLATES:
            expected |= {(eid, e, COMPANY_TEMPLATES[etype]) for e in contact_of[payload["id"]]}
        elif etype == cw.PLACEMENT_STARTED:
            expected |= {(eid, e, "placement_started") for e in contact_of[payload["company_id"]]}
        elif etype == cw.FOLLOW_UP_DUE:
            expected.add((eid, worker_email[payload["assigned_to"]], "follow_up_due"))
        elif etype == cw.PLACEMENTS_FLAGGED:
            expected |= {(eid, worker_email[s], "placements_flagged")
                         for s in payload["case_workers"]}
    figures.emails_expected = len(expected)
    ours = [str(r["event_id"]) for r in [*registry_out, *casework_out]]
    deliveries = await fetch(dbs["notifications"], """
        SELECT event_id, recipient, template, status, message_id, attempts, last_error
        FROM deliveries WHERE event_id = ANY($1::uuid[])""", ours)
    by_key: dict[tuple[str, str, str], list[asyncpg.Record]] = defaultdict(list)
    for d in deliveries:
        by_key[(str(d["event_id"]), d["recipient"] or "", d["template"])].append(d)
    received = Counter(str(m["Message-ID"]) for m in smtp.handler.messages)
    explained: set[str] = set()
    for key in sorted(expected):
        rows = [d for d in by_key.get(key, []) if d["status"] != "skipped"]
        if not rows:
            figures.emails_lost += 1
            skipped = [d["last_error"] for d in by_key.get((key[0], "", key[2]), [])]
            figures.problem(f"no delivery for {key}" + (f" (skipped: {skipped[0]})"
                                                        if skipped else ""))
            continue
        if len(rows) > 1:
            figures.emails_duplicated += len(rows) - 1
        for d in rows:
            explained.add(d["message_id"])
            n = received.get(d["message_id"], 0)
            if d["status"] != "sent" or n == 0:
                figures.emails_lost += 1
                figures.problem(f"email {key} {d['status']} after {d['attempts']} attempts, "
                                f"received {n}: {d['last_error']}")
            else:
                figures.emails_sent_once += 1
                figures.emails_resent_same_id += n - 1
    unexpected = [k for k, rows in by_key.items() if k not in expected
                  and any(d["status"] != "skipped" for d in rows)]
    for k in unexpected[:5]:
        figures.problem(f"delivery nobody expected: {k}")
    figures.emails_unexplained += len(unexpected)
    figures.emails_unexplained += sum(n for mid, n in received.items() if mid not in explained)

    # 4. Nothing parked.
    for service in ("casework", "notifications"):
        parked = await dlq.list_parked(broker_url, queues[service])
        figures.parked += len(parked)
        for p in parked[:5]:
            figures.problem(f"{service} parked {p.message_id} {p.routing_key}: {p.reason}")


async def absorbed(base_url: str) -> int:
    """Duplicates a consumer's inbox skipped, from its Prometheus metrics."""
    async with httpx.AsyncClient(timeout=10) as client:
        text = (await client.get(f"{base_url}/metrics")).text
    return int(sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("messages_consumed_total{")
                   and 'outcome="duplicate"' in line))


def worker_address(sub: str) -> str:
    return f"{sub}@faults.example.se"


# --- the run ------------------------------------------------------------------------------------


@dataclass
class Options:
    changes: int = 600
    concurrency: int = 12
    smtp_outage: float = 8.0
    rate: float = 0.0
    """Changes a second at most; 0 for as fast as the services go."""
    quiet_within: float = 240.0
    log_dir: Path | None = None
    restart_infrastructure: bool = True
    """False leaves PostgreSQL and RabbitMQ alone (while developing the run itself)."""


async def fault_run(postgres_url: str, broker_url: str, opts: Options) -> Figures:
    """Run the whole thing and return the figures; raises nothing for findings."""
    figures = Figures()
    log_dir = opts.log_dir or Path(
        os.environ.get("FAULT_LOG_DIR", ROOT / "var" / "faults")) / time.strftime("%Y%m%d-%H%M%S")
    log_dir.mkdir(parents=True, exist_ok=True)
    log(f"logs in {log_dir}")
    namespace = f"faults-{uuid.uuid4().hex[:6]}."
    queues = {s: ServiceQueues(service=namespace + s) for s in ("casework", "notifications")}
    workers = [(f"cw-faults-{i}", MUNICIPALITIES[i % 2]) for i in range(4)]
    smtp = SmtpServer()
    smtp.up()
    procs: dict[str, ServiceProc] = {}
    try:
        async with (
            own_vhost(broker_url) as vhost_url,
            fresh_database(postgres_url, "faults_registry", MIGRATIONS["registry"]) as reg_db,
            fresh_database(postgres_url, "faults_casework", MIGRATIONS["casework"]) as cw_db,
            fresh_database(postgres_url, "faults_notifications",
                           MIGRATIONS["notifications"]) as no_db,
        ):
            dbs = {"registry": reg_db, "casework": cw_db, "notifications": no_db}
            common = {"BROKER_URL": vhost_url, "QUEUE_NAMESPACE": namespace,
                      "RELAY_POLL_INTERVAL": "0.5"}
            procs = {
                "registry": ServiceProc("registry", {**common, "DATABASE_URL": reg_db}, log_dir),
                "casework": ServiceProc("casework", {
                    **common, "DATABASE_URL": cw_db, "CASEWORK_DATA_KEY": DATA_KEY,
                    "FOLLOW_UP_SWEEP_INTERVAL": "2"}, log_dir),
                "notifications": ServiceProc("notifications", {
                    **common, "DATABASE_URL": no_db, "SMTP_HOST": "127.0.0.1",
                    "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none", "SMTP_TIMEOUT": "5",
                    "RETRY_BASE_SECONDS": "0.5", "RETRY_CAP_SECONDS": "4",
                    "MAX_ATTEMPTS": "1000", "SWEEPER_INTERVAL": "0.5",
                    "SENDING_TIMEOUT_SECONDS": "10", "DIGEST_ENABLED": "false",
                    "FRONTEND_BASE_URL": "https://asf.example.se"}, log_dir),
            }
            for p in procs.values():
                p.start()
            await asyncio.gather(*(p.ready() for p in procs.values()))
            urls = {name: p.base_url for name, p in procs.items()}
            await add_contacts(urls["notifications"], workers)
            log(f"services up: {urls}")

            async def kill_and_restart(name: str) -> None:
                procs[name].kill9()
                await asyncio.sleep(0.5)
                procs[name].start()
                await procs[name].ready()

            async def everyone_ready() -> None:
                await asyncio.gather(*(p.ready(180) for p in procs.values()))

            async def rabbit() -> None:
                await restart_rabbitmq()
                await everyone_ready()

            async def postgres() -> None:
                await restart_postgresql()
                await everyone_ready()

            async def smtp_outage() -> None:
                smtp.down()
                await asyncio.sleep(opts.smtp_outage)
                smtp.up()

            faults = [
                Fault(0.10, "kill -9 registry", lambda: kill_and_restart("registry")),
                Fault(0.22, "kill -9 casework", lambda: kill_and_restart("casework")),
                Fault(0.34, f"SMTP refusing connections {opts.smtp_outage:g} s", smtp_outage),
                Fault(0.50, "kill -9 notifications", lambda: kill_and_restart("notifications")),
                Fault(0.62, "RabbitMQ restart", rabbit),
                Fault(0.78, "PostgreSQL restart", postgres),
            ]
            if not opts.restart_infrastructure:
                faults = faults[:4]
            client = LoadClient(urls, figures, opts.changes, workers, opts.rate)
            started = time.monotonic()
            try:
                load = asyncio.create_task(client.run(opts.concurrency))
                await inject_faults(client, faults, figures)
                await load
                log(f"load done: {client.pushed} changes in {time.monotonic() - started:.0f} s")
                quiet = await wait_quiet(dbs, vhost_url, list(queues.values()),
                                         opts.quiet_within)
                if not quiet:
                    figures.problem(f"the system was not quiet within {opts.quiet_within:g} s")
                await check(figures, client, dbs, vhost_url, queues, smtp, workers)
                figures.redeliveries_absorbed = sum([
                    await absorbed(urls[s]) for s in ("casework", "notifications")])
            finally:
                await client.close()
                await asyncio.gather(*(p.stop() for p in procs.values()))
                for q in queues.values():
                    with contextlib.suppress(Exception):
                        await delete_queues(vhost_url, q)
    finally:
        for p in procs.values():
            if p.process is not None and p.process.poll() is None:
                p.process.kill()
        smtp.down()
    log("\n" + figures.report())
    return figures


async def add_contacts(notifications_url: str, workers: list[tuple[str, str]]) -> None:
    """The registry officer and each case worker, as notifications contacts."""
    analyst = headers_of(token("analyst", sub="faults-analyst"))
    bodies = [{"name": "Registerhandläggare", "email": OFFICER_EMAIL, "role": "registry_officer"}]
    bodies += [{"name": f"Handläggare {sub}", "email": worker_address(sub), "role": "case_worker",
                "subject": sub, "municipality_code": m} for sub, m in workers]
    async with httpx.AsyncClient(timeout=30) as client:
        for body in bodies:
            r = await client.post(f"{notifications_url}/contacts", json=body, headers=analyst)
            if r.status_code != 201:
                raise RuntimeError(f"contact not created: {r.status_code} {r.text}")
