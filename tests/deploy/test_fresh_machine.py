"""The two commands on a truly fresh machine: a bare Debian container with nothing but git,
make and python3 (no PostgreSQL, no RabbitMQ, no pip, no uv) gets a clone of this repository;
`make run` there sets everything up and brings the whole stack up with its demo data, and
then the tests pass there too.

The clone is of the committed HEAD (a git bundle), as a newcomer's clone would be. The
container has a network of its own, so its PostgreSQL, RabbitMQ and services never meet this
machine's. Where a TLS-inspecting proxy sits between this machine and PyPI, its CA bundle
(`SSL_CERT_FILE`) is lent to the container read-only; nothing else of the host goes in.

After `make run`, the container runs `make lint typecheck` and the subset of `make test` in
`SUBSET` (the whole `make test` took 9.5 minutes there on a shared 2-core machine, which CI
need not spend twice; set `FRESH_MACHINE_FULL=1` to run all of it)."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
REPO = "/root/asf-samverkan"
SUBSET = ["services/registry/tests", "services/casework/tests", "services/notifications/tests",
          "tests/contract", "tests/e2e"]

READY = """\
import json, os, subprocess, sys, urllib.request
os.environ.update(APP_ENV="development",  # make run's development secret, as in the README
                  JWT_SECRET="dev-secret-change-me-0123456789abcdef0123456789")
for port in (8001, 8002, 8003):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=3) as r:
        assert r.status == 200
def get(port, path, *claims):
    token = subprocess.run([".venv/bin/registry", "token", *claims], capture_output=True,
                           text=True, check=True).stdout.strip()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return json.load(r)["items"]
companies = get(8001, "/companies?status=active", "--sub", "o", "--role", "registry_officer")
cases = get(8002, "/participants", "--sub", "cw", "--role", "case_worker",
            "--municipality", "0180")
assert companies and cases, (len(companies), len(cases))
print(len(companies), len(cases))
"""


class Machine:
    """The fresh machine: one container, commands run in it as root."""

    def __init__(self, engine: Any, name: str) -> None:
        self.engine, self.name = engine, name

    def sh(self, script: str, timeout: float = 600, check: bool = True
           ) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.engine.cmd("exec", self.name, "sh", "-c", script),
                                capture_output=True, text=True, timeout=timeout, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"{script!r} failed ({result.returncode}):\n"
                                 f"{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result


@pytest.fixture(scope="module")
def machine(engine: Any, containers: Any, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[Machine]:
    image = containers.ensure_fresh_debian_image(engine)
    share = tmp_path_factory.mktemp("fresh-machine")
    share.chmod(0o755)
    (share / "ready.py").write_text(READY)
    subprocess.run(["git", "bundle", "create", str(share / "repo.bundle"), "HEAD"], cwd=ROOT,
                   check=True, capture_output=True)
    lend: list[str] = []
    bundle = containers.ca_bundle()
    if bundle is not None:
        lend = ["-v", f"{bundle}:/mnt/host-ca.pem:ro", "-e", "SSL_CERT_FILE=/mnt/host-ca.pem"]
    name = f"asf-fresh-{uuid.uuid4().hex[:8]}"
    engine.run("run", "-d", "--init", "--name", name, "-v", f"{share}:/mnt/share:ro", *lend,
               image, "sleep", "infinity", quiet=True, timeout=120)
    try:
        yield Machine(engine, name)
    finally:
        engine.run("rm", "-f", "-t", "5", name, check=False, quiet=True, timeout=120)


@pytest.mark.timeout(3600)
def test_make_run_then_make_test_on_a_fresh_debian(machine: Machine, figure: Any) -> None:
    tools = machine.sh("for c in git make python3 pip3 uv psql rabbitmqctl; do "
                       "if command -v $c >/dev/null; then echo $c; fi; done").stdout.split()
    assert tools == ["git", "make", "python3"], f"not a fresh machine: {tools}"
    machine.sh(f"git -c advice.detachedHead=false clone -q /mnt/share/repo.bundle {REPO}")

    started = time.monotonic()
    machine.sh(f"cd {REPO} && setsid sh -c 'echo $$ > /root/run.pid; exec make run' "
               "> /root/run.log 2>&1 &")
    deadline = started + 900
    while machine.sh(f"cd {REPO} && python3 /mnt/share/ready.py", check=False).returncode:
        log = machine.sh("tail -c 3000 /root/run.log", check=False).stdout
        assert time.monotonic() < deadline, f"the stack did not come up:\n{log}"
        assert machine.sh("kill -0 $(cat /root/run.pid)", check=False).returncode == 0, \
            f"make run stopped:\n{log}"
        time.sleep(5)
    ready_after = time.monotonic() - started
    figure(f"fresh Debian machine: `make run` from nothing to every service ready with its "
           f"demo data in {ready_after:.0f} s")
    setup = machine.sh("grep -E '^\\[setup\\]' /root/run.log").stdout
    assert "installing the distribution's postgresql and rabbitmq-server" in setup
    # Only on 127.0.0.1: no port of PostgreSQL, RabbitMQ, epmd or a service on 0.0.0.0.
    listening = machine.sh("awk 'NR>1 && $4==\"0A\" {print $2}' /proc/net/tcp").stdout.split()
    assert listening and all(a.startswith("0100007F:") for a in listening), listening
    # Ctrl-C, as a person would stop it: every service goes with the runner.
    machine.sh("group=-$(cat /root/run.pid); kill -INT $group; for _ in $(seq 60); do "
               "kill -0 $group 2>/dev/null || exit 0; sleep 1; done; exit 1")

    # The next run reuses what the first set up: stopped, it is started, not installed again.
    machine.sh("pg_ctlcluster --skip-systemctl-redirect 15 main stop && rabbitmqctl stop")
    again = machine.sh(f"cd {REPO} && make services 2>&1", timeout=300).stdout
    assert "starting PostgreSQL" in again and "starting RabbitMQ" in again, again
    assert "installing" not in again and "RabbitMQ on 127.0.0.1:5672: up" in again, again

    full = os.environ.get("FRESH_MACHINE_FULL") == "1"
    command = "make test" if full else \
        f"make lint typecheck && .venv/bin/pytest -q -p no:cacheprovider {' '.join(SUBSET)}"
    started = time.monotonic()
    result = machine.sh(f"cd {REPO} && {{ {command}; }} > /root/test.log 2>&1; echo $?",
                        timeout=3500)
    tail = machine.sh("tail -c 3000 /root/test.log").stdout
    assert result.stdout.strip() == "0", tail
    figure(f"fresh Debian machine: `{command}` passed in {time.monotonic() - started:.0f} s")
