"""End to end: `POST /learning-examples` on the registry, to the email for SKR's information
officer accepted by an SMTP server (aiosmtpd, in this process).

The way: registry (HTTP, transaction with the outbox row) → registry relay → `asf.events`
→ notifications' quorum queue → notifications (inbox, delivery row) → its sender →
SMTP. Both services run as their own processes, as in production.
"""

from __future__ import annotations

import asyncio
import contextlib
import email
import email.policy
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
from aiosmtpd.controller import Controller

from asf_contracts.topology import ServiceQueues
from asf_kit.db import migrate
from asf_testing import auth, delete_queues, free_port, service_process
from bench.common import Result, now, scratch_database
from bench.memory import RssSampler

ROOT = Path(__file__).resolve().parents[1]
REGISTRY_MIGRATIONS = ROOT / "services" / "registry" / "migrations"
NOTIFICATIONS_MIGRATIONS = ROOT / "services" / "notifications" / "migrations"
TOKEN = re.compile(r"bench-[0-9a-f]{32}")


class Inbox:
    """An SMTP server's handler that notes when each bench email arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.lock = threading.Lock()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.changed = asyncio.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        at = now()
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        text = ""
        for part in message.walk():
            if part.get_content_type() == "text/plain":
                text += str(part.get_content())
        found = TOKEN.search(text)
        if found:
            with self.lock:
                self.arrived.setdefault(found.group(0), at)
            if self.loop is not None:
                self.loop.call_soon_threadsafe(self.changed.set)
        return "250 Message accepted for delivery"


async def end_to_end(broker_url: str, *, rate: float, seconds: float, log_dir: Path,
                     say: Any = print) -> tuple[list[Result], dict[str, float]]:
    inbox = Inbox()
    inbox.loop = asyncio.get_running_loop()
    smtp_port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    memory: dict[str, float] = {}
    try:
        async with scratch_database("e2ereg") as reg_dsn, \
                scratch_database("e2enot") as not_dsn:
            await migrate(reg_dsn, REGISTRY_MIGRATIONS)
            await migrate(not_dsn, NOTIFICATIONS_MIGRATIONS)
            reg_env = {"DATABASE_URL": reg_dsn, "BROKER_URL": broker_url, "LOG_LEVEL": "INFO"}
            namespace = f"bench{uuid.uuid4().hex[:6]}."
            not_env = {"DATABASE_URL": not_dsn, "BROKER_URL": broker_url, "LOG_LEVEL": "INFO",
                       "QUEUE_NAMESPACE": namespace,
                       "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_TLS": "none",
                       "DIGEST_ENABLED": "false"}
            async with service_process("notifications.cli", not_env,
                                       log_dir / "notifications-e2e.log") as notif, \
                    service_process("registry.cli", reg_env,
                                    log_dir / "registry-e2e.log") as reg:
                async with httpx.AsyncClient(base_url=notif.base_url, timeout=30) as c:
                    r = await c.post("/contacts", headers=auth("analyst", sub="bench-analyst"),
                                     json={"name": "SKR informationsansvarig",
                                           "email": "info@skr.example.se",
                                           "role": "information_officer"})
                    assert r.status_code == 201, r.text
                headers = auth("case_worker", sub="bench-cw", municipality_code="0180")
                sent: dict[str, float] = {}

                def make(_: int) -> tuple[str, str, dict[str, Any]]:
                    token = f"bench-{uuid.uuid4().hex}"
                    sent[token] = now()
                    return ("POST", "/learning-examples", {"json": {
                        "municipality_code": "0180", "title": token,
                        "summary": "Arbetsträning i kaféet, sedan anställning med lönebidrag.",
                        "collaboration_types": ["work_training"],
                        "contact": {"name": "Kim Exempel", "email": "kim@example.se"}}})

                async with httpx.AsyncClient(base_url=reg.base_url, headers=headers,
                                             timeout=30) as client:
                    for i in range(20):  # warm up the whole way, then forget it
                        await client.request(*make(i)[:2], **make(i)[2])
                    await _wait_all(inbox, list(sent), 60)
                    sent.clear()
                    memory["registry_rss_idle_mb"] = RssSampler.now_mb(reg.process.pid)
                    memory["notifications_rss_idle_mb"] = RssSampler.now_mb(notif.process.pid)
                    from bench.load import at_rate

                    with RssSampler(reg.process.pid) as reg_rss, \
                            RssSampler(notif.process.pid) as not_rss:
                        http = await at_rate(client, f"POST /learning-examples at {rate:.0f}/s",
                                             make, rate, seconds, expect=201)
                        missing = await _wait_all(inbox, list(sent), 120)
                    memory["registry_rss_e2e_peak_mb"] = reg_rss.peak_mb
                    memory["notifications_rss_e2e_peak_mb"] = not_rss.peak_mb
            await delete_queues(broker_url, ServiceQueues(service=namespace + "notifications"))
        latencies = [inbox.arrived[t] - sent[t] for t in sent if t in inbox.arrived]
        e2e = Result(f"HTTP call → email accepted by SMTP, at {rate:.0f}/s", len(latencies),
                     http.seconds, latencies)
        e2e.failures = missing  # type: ignore[attr-defined]
        say(f"  {e2e.name}: p50 {e2e.pct(50):.1f} p99 {e2e.pct(99):.1f} ms"
            f" ({missing} emails missing)")
        return [http, e2e], memory
    finally:
        controller.stop()


async def _wait_all(inbox: Inbox, tokens: list[str], within: float) -> int:
    """Wait until every token's email arrived; how many did not."""
    deadline = now() + within
    while True:
        with inbox.lock:
            missing = sum(1 for t in tokens if t not in inbox.arrived)
        if not missing or now() > deadline:
            return missing
        inbox.changed.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(inbox.changed.wait(), 0.5)
