"""The whole product for the web app's tests: registry, casework, notifications and the web
app, each as its own process on a free port against fresh databases, the real RabbitMQ,
and a real SMTP server in the test process. One stack per test session."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from asf_contracts.topology import ServiceQueues
from asf_testing import (
    JWT_TEST_SECRET,
    ServiceProcess,
    SmtpServer,
    delete_queues,
    free_port,
    fresh_database,
    identity_number,
    org_number,
    unique_namespace,
    wait_ready,
)

ROOT = Path(__file__).resolve().parents[3]
DATA_KEY = base64.b64encode(b"web-tests-key-web-tests-key-web!").decode()
SESSION_SECRET = "web-tests-session-secret-0123456789abcdef"


@dataclass
class Stack:
    registry: ServiceProcess
    casework: ServiceProcess
    notifications: ServiceProcess
    web: ServiceProcess
    smtp: SmtpServer
    namespace: str
    env: dict[str, str] = field(default_factory=dict)
    casework_env: dict[str, str] = field(default_factory=dict)
    """casework's settings, for its commands (`close-month`) against the same database."""

    @property
    def url(self) -> str:
        return self.web.base_url


@contextlib.asynccontextmanager
async def service_process(module: str, env: dict[str, str], log_path: Path, *,
                          ready: bool = True, port: int | None = None
                          ) -> AsyncIterator[ServiceProcess]:
    """`python -m <module> serve` on `port` (a free one by default), SIGTERMed afterwards:
    the kit's helper, with the port chosen by the caller when another process must know
    it first."""
    port = port or free_port()
    full_env = {**os.environ, "APP_ENV": "development", "JWT_SECRET": JWT_TEST_SECRET,
                "LOG_FORMAT": "json", "HOST": "127.0.0.1", **env, "PORT": str(port)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", module, "serve"], env=full_env, stdout=log,
            stderr=subprocess.STDOUT)
    proc = ServiceProcess(process, f"http://127.0.0.1:{port}", log_path)
    try:
        if ready:
            await wait_ready(proc.base_url)
        yield proc
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                await asyncio.to_thread(process.wait, 30)
            except subprocess.TimeoutExpired:
                process.kill()


@contextlib.asynccontextmanager
async def running_stack(postgres_url: str, broker_url: str, logs: Path,
                        web_env: dict[str, str] | None = None,
                        api_env: dict[str, str] | None = None) -> AsyncIterator[Stack]:
    namespace = unique_namespace()
    smtp = SmtpServer()
    smtp.up()
    common = {"BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace, "APP_ENV": "development",
              "RELAY_POLL_INTERVAL": "0.2", "LOG_LEVEL": "INFO", **(api_env or {})}
    try:
        async with (
            fresh_database(postgres_url, "web_registry",
                           ROOT / "services/registry/migrations") as registry_db,
            fresh_database(postgres_url, "web_casework",
                           ROOT / "services/casework/migrations") as casework_db,
            fresh_database(postgres_url, "web_notifications",
                           ROOT / "services/notifications/migrations") as notifications_db,
            service_process("registry.cli", {**common, "DATABASE_URL": registry_db},
                            logs / "registry.log") as registry,
            service_process("casework.cli", casework_env := {
                **common, "DATABASE_URL": casework_db, "CASEWORK_DATA_KEY": DATA_KEY,
                "FOLLOW_UP_SWEEP_INTERVAL": "0", "STATEMENT_SWEEP_INTERVAL": "0"},
                logs / "casework.log") as casework,
        ):
            base_env = {"APP_ENV": "development", "SESSION_SECRET": SESSION_SECRET,
                        "REGISTRY_URL": registry.base_url, "CASEWORK_URL": casework.base_url,
                        **(web_env or {})}
            # The web app first (not ready until notifications runs), so notifications
            # can put the web app's address in the links of its emails.
            notifications_port = free_port()
            env = {**base_env, "NOTIFICATIONS_URL": f"http://127.0.0.1:{notifications_port}"}
            web_process = service_process("web.cli", env, logs / "web.log", ready=False)
            async with web_process as web, service_process("notifications.cli", {
                **common, "DATABASE_URL": notifications_db, "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none", "SMTP_STARTTLS": "false",
                "SWEEPER_INTERVAL": "0.2", "DIGEST_ENABLED": "false",
                "FRONTEND_BASE_URL": web.base_url},
                    logs / "notifications.log", port=notifications_port) as notifications:
                await wait_ready(web.base_url)
                yield Stack(registry, casework, notifications, web, smtp, namespace, env,
                            {**os.environ, "APP_ENV": "development",
                             "JWT_SECRET": JWT_TEST_SECRET, **casework_env})
    finally:
        smtp.down()
        for service in ("casework", "notifications"):
            await delete_queues(broker_url, ServiceQueues(service=namespace + service))


# --- signing in and data, over HTTP --------------------------------------------------------

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m, "no CSRF token on the page"
    return m.group(1)


PEOPLE: dict[str, dict[str, str]] = {
    "case_worker": {"sub": "cw-web-1", "name": "Maja Handläggare", "role": "case_worker",
                    "municipality_code": "0180"},
    "case_worker_other": {"sub": "cw-web-2", "name": "Göran Handläggare",
                          "role": "case_worker", "municipality_code": "1480"},
    "registry_officer": {"sub": "officer-web", "name": "Rut Registrator",
                         "role": "registry_officer"},
    "analyst": {"sub": "analyst-web", "name": "Ali Analytiker", "role": "analyst"},
    "auditor": {"sub": "auditor-web", "name": "Greta Granskare", "role": "auditor",
                "municipality_code": "0180"},
}


def sign_in(base_url: str, person: dict[str, str], **extra: str) -> httpx.Client:
    """A browser-like client signed in through /dev-login (cookies, CSRF and all)."""
    client = httpx.Client(base_url=base_url, follow_redirects=False, timeout=30)
    page = client.get("/dev-login")
    assert page.status_code == 200, page.text[:500]
    r = client.post("/dev-login", data={**person, **extra, "csrf_token": csrf_of(page.text),
                                        "next": "/"})
    assert r.status_code == 303, r.text[:500]
    return client


def post_form(client: httpx.Client, page: str, action: str, data: dict[str, Any],
              files: Any = None) -> httpx.Response:
    """Open `page`, then post `data` to `action` with the page's CSRF token."""
    html = client.get(page).text
    return client.post(action, data={**data, "csrf_token": csrf_of(html)}, files=files)


def company_form(name: str, municipality: str = "0180", places: int = 5) -> dict[str, Any]:
    return {
        "org_number": org_number(), "name": name, "legal_form": "ekonomisk_forening",
        "municipality_code": municipality, "industries": ["recycling"], "origin": "founded",
        "training_places": str(places), "contacts[0].name": "Kim Ek",
        "contacts[0].email": "kim@example.se", "workforce.as_of": "2026-01-01",
        "workforce.engaged_total": "20", "workforce.employees_total": "8",
        "workforce.target_group_engaged": "12", "criteria.runs_business": "on",
        "criteria.integration_purpose": "on", "criteria.participation.form": "ownership",
        "criteria.reinvests_profits": "on", "criteria.independent_of_public_sector": "on",
    }


def active_company(stack: Stack, officer: httpx.Client, name: str,
                   municipality: str = "0180", places: int = 5) -> str:
    """A company registered, verified, and known to casework (through the broker)."""
    r = post_form(officer, "/companies/new", "/companies/new",
                  company_form(name, municipality, places))
    assert r.status_code == 303, r.text[:2000]
    company_id = r.headers["location"].rsplit("/", 1)[1]
    r = post_form(officer, f"/companies/{company_id}", f"/companies/{company_id}/verification",
                  {"decision": "verified", "level": "verified"})
    assert r.status_code == 303, r.text[:2000]
    return company_id


def eventually(check: Any, what: str, within: float = 30.0) -> Any:
    deadline = time.monotonic() + within
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


__all__ = ["JWT_TEST_SECRET", "identity_number", "org_number"]


@contextlib.contextmanager
def stack_in_thread(postgres_url: str, broker_url: str, logs: Path,
                    **kwargs: Any) -> Iterator[Stack]:
    """`running_stack` on an event loop of its own thread, so sync tests (Playwright's sync
    API runs a loop in the main thread) can use it whatever the fixture order."""
    import threading

    ready = threading.Event()
    stop: asyncio.Event | None = None
    loop: asyncio.AbstractEventLoop | None = None
    box: dict[str, Any] = {}

    async def main() -> None:
        nonlocal stop, loop
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        try:
            async with running_stack(postgres_url, broker_url, logs, **kwargs) as s:
                box["stack"] = s
                ready.set()
                await stop.wait()
        except BaseException as e:
            box["error"] = e
            ready.set()

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    ready.wait(180)
    if "error" in box:
        raise box["error"]
    if "stack" not in box:
        raise AssertionError("the stack did not start within 180 s")
    try:
        yield box["stack"]
    finally:
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        thread.join(120)


def run_async(coro: Any) -> Any:
    """Run a coroutine to the end on a loop of its own thread: Playwright's sync API keeps
    a loop running in the main thread once the browser started, so the async parts of
    these tests cannot use pytest-asyncio's."""
    import threading

    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = asyncio.run(coro)
        except BaseException as e:
            box["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    return box.get("result")
