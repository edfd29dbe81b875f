"""`make run` as a newcomer uses it, on ports and databases of its own (so it never meets a
stack someone runs on 8000-8003): it comes up with demo data, a service killed with
`kill -9` comes back by itself and catches up on its queue with nothing lost, and the
README's runnable commands work in a fresh shell against it."""

from __future__ import annotations

import asyncio
import contextlib
import email
import os
import random
import re
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import httpx
import pytest
from stdnum import luhn

from asf_contracts.topology import ServiceQueues
from asf_kit.auth import mint_token
from asf_testing import delete_queues, free_port, with_database

ROOT = Path(__file__).resolve().parents[2]
APIS = ("registry", "casework", "notifications")
DEFAULT_PORTS = {"registry": 8001, "casework": 8002, "notifications": 8003, "web": 8000}
DEV_SECRET = "dev-secret-change-me-0123456789abcdef0123456789"  # make run's, in the README


def auth(role: str) -> dict[str, str]:
    """A token as `make run` prints them (signed with its development secret)."""
    return {"Authorization": f"Bearer {mint_token(DEV_SECRET, 'stack-test', [role])}"}


@dataclass
class LocalStack:
    process: subprocess.Popen[bytes]
    log_path: Path
    ports: dict[str, int]
    env: dict[str, str]
    mail_dir: Path

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.ports[service]}"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pids(self, service: str) -> list[int]:
        """Every pid the runner has started the service as, in order."""
        return [int(p) for p in re.findall(rf"\[run\] {service}: started \(pid (\d+)\)",
                                           self.log())]

    def wait_for_log(self, pattern: str, within: float) -> re.Match[str]:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            found = re.search(pattern, self.log())
            if found:
                return found
            if self.process.poll() is not None:
                break
            time.sleep(0.5)
        raise AssertionError(f"no line matching {pattern!r} in the runner's output:\n"
                             + self.log()[-5000:])


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory, postgres_url: str,
                broker_url: str) -> Iterator[LocalStack]:
    """`make run` with its ports, databases, queue namespace and mail folder moved aside
    (everything else as a newcomer gets it, the development secret too)."""
    tmp = tmp_path_factory.mktemp("local-stack")
    tag = uuid.uuid4().hex[:8]
    ports = {name: free_port() for name in (*APIS, "web", "mail")}
    env = {**os.environ, "BROKER_URL": broker_url,
           "QUEUE_NAMESPACE": f"runtest-{tag}.", "MAILCATCHER_DIR": str(tmp / "mail"),
           "MAILCATCHER_PORT": str(ports["mail"]), "LOG_FORMAT": "json",
           "FOLLOW_UP_SWEEP_INTERVAL": "0"}
    for name in (*APIS, "web"):
        env[f"{name.upper()}_PORT"] = str(ports[name])
    for name in APIS:
        env[f"{name.upper()}_DATABASE_URL"] = with_database(postgres_url, f"runtest_{tag}_{name}")
    for name in ("SMTP_HOST", "DATABASE_URL", "PORT", "JWT_SECRET", "APP_ENV"):
        env.pop(name, None)
    log_path = tmp / "make-run.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(["make", "--no-print-directory", "run"], cwd=ROOT, env=env,
                                   stdout=log, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    stack = LocalStack(process, log_path, ports, env, tmp / "mail")
    try:
        stack.wait_for_log(r"Ctrl-C stops everything", within=240)  # the whole banner
        yield stack
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        asyncio.run(_clean_up(postgres_url, broker_url, tag))


async def _clean_up(postgres_url: str, broker_url: str, tag: str) -> None:
    admin = await asyncpg.connect(postgres_url)
    try:
        for name in APIS:
            await admin.execute(f'DROP DATABASE IF EXISTS "runtest_{tag}_{name}" WITH (FORCE)')
    finally:
        await admin.close()
    for name in ("casework", "notifications"):
        await delete_queues(broker_url, ServiceQueues(service=f"runtest-{tag}.{name}"))


def org_number() -> str:
    body = "7" + str(random.randint(0, 9)) + str(random.randint(2, 9)) + \
        "".join(random.choices("0123456789", k=6))
    digits = body + luhn.calc_check_digit(body)
    return f"{digits[:6]}-{digits[6:]}"


def company(contact_email: str) -> dict[str, Any]:
    return {
        "org_number": org_number(), "name": f"Omstartsföretaget {uuid.uuid4().hex[:8]}",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180",
        "industries": ["cleaning"], "training_places": 3, "origin": "founded",
        "contacts": [{"name": "Kim Ek", "role": "manager", "email": contact_email}],
        "workforce": {"as_of": "2026-01-01", "employees_total": 2, "engaged_total": 6,
                      "target_group_engaged": 3},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    }


def caught_for(mail_dir: Path, address: str) -> list[str]:
    """The Message-IDs of every caught email to `address`."""
    found = []
    for path in mail_dir.glob("*.eml"):
        message = email.message_from_bytes(path.read_bytes())
        if address in message.get("X-Envelope-To", ""):
            found.append(message.get("Message-ID", path.name))
    return found


async def ready(client: httpx.AsyncClient, url: str) -> bool:
    try:
        return (await client.get(f"{url}/readyz")).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.asynccontextmanager
async def queue_depth(broker_url: str, name: str) -> AsyncIterator[Any]:
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()

        async def depth() -> int:
            queue = await channel.declare_queue(name, passive=True)
            return int(queue.declaration_result.message_count or 0)

        yield depth
    finally:
        await connection.close()


def test_the_stack_comes_up_on_its_own_ports_with_demo_data(local_stack: LocalStack) -> None:
    for name in APIS:
        r = httpx.get(f"{local_stack.url(name)}/readyz", timeout=10)
        assert r.status_code == 200, (name, r.text)
    companies = httpx.get(f"{local_stack.url('registry')}/companies?status=active",
                          headers=auth("registry_officer"), timeout=10).json()["items"]
    assert companies, "the demo companies are there"
    log = local_stack.log()
    assert "Development tokens" in log
    if "web: started" in log:
        assert f"http://localhost:{local_stack.ports['web']}/dev-login" in log


@pytest.mark.timeout(300)
async def test_a_service_killed_with_kill_9_comes_back_and_catches_up(
        local_stack: LocalStack, broker_url: str) -> None:
    """Notifications dies twice in a row (the runner backs off 1 s, then 2 s); meanwhile the
    registry keeps taking companies and their events wait in notifications' queue; it comes
    back by itself and sends every receipt the queue kept, once each."""
    [*_, first] = local_stack.pids("notifications")
    os.kill(first, signal.SIGKILL)
    local_stack.wait_for_log(r"notifications: killed by signal 9; restarting in 1 s", 15)
    second = int(local_stack.wait_for_log(
        rf"notifications: started \(pid (?!{first}\))(\d+)\)", 30).group(1))
    os.kill(second, signal.SIGKILL)
    local_stack.wait_for_log(r"notifications: killed by signal 9; restarting in 2 s", 15)
    addresses = [f"kill9-{uuid.uuid4().hex[:10]}@example.se" for _ in range(10)]
    queue = ServiceQueues(service=local_stack.env["QUEUE_NAMESPACE"] + "notifications").main
    async with httpx.AsyncClient(timeout=30) as client, \
            queue_depth(broker_url, queue) as depth:
        for address in addresses:
            r = await client.post(f"{local_stack.url('registry')}/companies",
                                  json=company(address), headers=auth("company_rep"))
            assert r.status_code == 201, r.text
        queued = 0
        while queued < len(addresses) and not await ready(client, local_stack.url(
                "notifications")):
            queued = await depth()
            await asyncio.sleep(0.1)
        assert queued >= len(addresses), "the events waited in the queue while it was down"
        deadline = time.monotonic() + 90
        while not await ready(client, local_stack.url("notifications")):
            assert time.monotonic() < deadline, "notifications did not come back"
            await asyncio.sleep(0.5)
        assert len(local_stack.pids("notifications")) >= 3
        assert len(local_stack.pids("registry")) == 1, "the others kept running"
        deadline = time.monotonic() + 120
        while not all(caught_for(local_stack.mail_dir, a) for a in addresses):
            assert time.monotonic() < deadline, [
                a for a in addresses if not caught_for(local_stack.mail_dir, a)]
            await asyncio.sleep(1)
    for address in addresses:
        assert len(caught_for(local_stack.mail_dir, address)) == 1, address


def runnable_blocks(readme: str) -> list[str]:
    """The README's shell blocks marked `<!-- runnable ... -->`."""
    return re.findall(r"<!-- runnable[^>]*-->\n```bash\n(.*?)```", readme, re.DOTALL)


def test_the_readme_commands_work_in_a_fresh_shell(local_stack: LocalStack) -> None:
    """Each runnable block, in a shell with nothing but the system's PATH (no uv, no .venv),
    against this stack (its ports put where the README says 8001-8003 and 8000)."""
    if shutil.which("curl") is None:
        pytest.skip("the README's blocks call curl, which this machine does not have")
    blocks = runnable_blocks((ROOT / "README.md").read_text())
    assert len(blocks) >= 2, "the README marks its runnable blocks"
    fresh = {"HOME": os.environ["HOME"], "PATH": "/usr/local/bin:/usr/bin:/bin",
             "LANG": "C.UTF-8"}
    for block in blocks:
        script = block
        for name, port in DEFAULT_PORTS.items():
            script = re.sub(rf"\b(localhost|127\.0\.0\.1):{port}\b",
                            rf"\g<1>:{local_stack.ports[name]}", script)
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT,
                                env=fresh, capture_output=True, text=True, timeout=120,
                                check=False)
        assert result.returncode == 0, f"{block}\n--\n{result.stdout[-2000:]}{result.stderr}"
        assert result.stdout.strip(), block
