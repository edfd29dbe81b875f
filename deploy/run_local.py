"""Run the whole stack on this machine, in the foreground, with demo data (`make run`).

Each service runs as its own process, exactly as it would be deployed, against the
PostgreSQL and RabbitMQ that `deploy/ensure_services.py` found or set up. A service that
dies is started again after a backoff (1 s, doubling to 30 s; back to 1 s once it has
run for a minute) and a line says so; the others keep running. With no SMTP_HOST set, the
notifications service catches mail itself into `var/mail/`. Ctrl-C stops everything.

Settings (environment): `REGISTRY_PORT`, `CASEWORK_PORT`, `NOTIFICATIONS_PORT`, `WEB_PORT`
(8001, 8002, 8003, 8000) and `<SERVICE>_DATABASE_URL` (default `$POSTGRES_URL/asf_<service>`)
choose where each service listens and what it stores in; everything else (JWT_SECRET,
BROKER_URL, QUEUE_NAMESPACE, ...) is passed through to every service.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
DEV_SECRET = "dev-secret-change-me-0123456789abcdef0123456789"
BACKOFF_FIRST, BACKOFF_CAP, STABLE_AFTER = 1.0, 30.0, 60.0


class Service(NamedTuple):
    """One service of the stack (a NamedTuple, so this script imports from a path as is)."""

    name: str
    module: str
    default_port: int
    database: str | None  # the web app has none

    @property
    def port(self) -> int:
        return int(os.environ.get(f"{self.name.upper()}_PORT", self.default_port))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = [
    Service("registry", "registry.cli", 8001, "asf_registry"),
    Service("casework", "casework.cli", 8002, "asf_casework"),
    Service("notifications", "notifications.cli", 8003, "asf_notifications"),
    Service("web", "web.cli", 8000, None),
]
WEB = SERVICES[3]


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def stack_env() -> dict[str, str]:
    """What `ensure_services.py` set up for the stack (e.g. the mail catcher container)."""
    path = Path(os.environ.get("ASF_STACK_ENV") or ROOT / "var" / "stack.env")
    if not path.exists():
        return {}
    lines = path.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if "=" in line)


def service_env(service: Service) -> dict[str, str]:
    """The environment of one service: the caller's, plus development defaults, plus the
    service's own port and database (a user-set `<SERVICE>_PORT` wins)."""
    env = {**stack_env(), **os.environ}
    env["APP_ENV"] = "development"  # development secrets, the mail catcher, HS256 tokens
    env.setdefault("JWT_SECRET", DEV_SECRET)
    env.setdefault("LOG_FORMAT", "console")
    env.setdefault("MAILCATCHER_DIR", str(ROOT / "var" / "mail"))
    env.setdefault("FRONTEND_BASE_URL", f"http://localhost:{WEB.port}")
    # A stable development key so demo data stays readable across restarts.
    env.setdefault("CASEWORK_DATA_KEY", "ZGV2LWtleS1kZXYta2V5LWRldi1rZXktZGV2LWtleSE=")
    env["PORT"] = str(service.port)
    if service.database is not None:
        pg = env.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
        env["DATABASE_URL"] = env.get(f"{service.name.upper()}_DATABASE_URL",
                                      f"{pg}/{service.database}")
    for other in SERVICES[:3]:  # where the web app finds the APIs
        env.setdefault(f"{other.name.upper()}_URL", other.url)
    return env


def _die_with_parent() -> None:
    """Linux: the service gets SIGTERM if this runner is killed, so nothing is left behind."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class Supervised:
    """One service process, started again with a backoff whenever it exits."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0
        self.restarts = 0
        self.backoff = BACKOFF_FIRST
        self.restart_at: float | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", self.service.module, "serve"], env=service_env(self.service),
            cwd=ROOT, preexec_fn=_die_with_parent)
        self.started_at = time.monotonic()
        say(f"{self.service.name}: started (pid {self.process.pid}) on :{self.service.port}")

    def check(self, now: float) -> None:
        """Notice an exit and plan the restart; start it when its time has come."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.restart_at = None
                self.restarts += 1
                self.start()
            return
        if self.process is None or self.process.poll() is None:
            return
        if now - self.started_at >= STABLE_AFTER:
            self.backoff = BACKOFF_FIRST
        code = self.process.returncode
        how = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        say(f"{self.service.name}: {how}; restarting in {self.backoff:.0f} s "
            f"(restart {self.restarts + 1}); the other services keep running")
        self.restart_at = now + self.backoff
        self.backoff = min(self.backoff * 2, BACKOFF_CAP)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self) -> None:
        if self.process is None:
            return
        try:
            self.process.wait(timeout=25)
        except subprocess.TimeoutExpired:
            self.process.kill()


def say(line: str) -> None:
    print(f"[run] {line}", flush=True)


def wait_ready(service: Service, timeout: float = 90) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), \
                urllib.request.urlopen(f"{service.url}/readyz", timeout=2) as r:
            if r.status == 200:
                return True
        time.sleep(0.5)
    return False


def token(env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "registry.cli", "token", *args], env=env,
                         check=True, capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip()


class Stop(Exception):
    """SIGTERM or SIGINT: stop every service and exit."""


def _on_signal(signum: int, _: FrameType | None) -> None:
    raise Stop(signum)


@contextlib.contextmanager
def supervising(present: list[Service]) -> Iterator[None]:
    """Start every service and watch them from a thread of their own, so a death is noticed
    and restarted at once, during the seeding too; stop them all at the end."""
    supervised = [Supervised(s) for s in present]
    stopping = threading.Event()

    def watch() -> None:
        while not stopping.wait(0.5):
            now = time.monotonic()
            for s in supervised:
                s.check(now)

    for s in supervised:
        s.start()
    watcher = threading.Thread(target=watch, name="supervisor", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopping.set()
        watcher.join()
        say("stopping the services")
        for s in supervised:
            s.stop()
        for s in supervised:
            s.wait()


def banner(present: list[Service]) -> None:
    env = service_env(SERVICES[0])
    print("\nThe stack is up. Development tokens (12 h):")
    print("  registry officer:", token(env, "--sub", "officer-1", "--role", "registry_officer"))
    print("  case worker 0180:", token(env, "--sub", "cw-stockholm-1", "--role", "case_worker",
                                       "--municipality", "0180"))
    print("  analyst:         ", token(env, "--sub", "analyst-1", "--role", "analyst"))
    apis = "  ".join(f"{s.url}/docs" for s in present if s.database is not None)
    print(f"\nOpenAPI: {apis}")
    if WEB in present:
        print(f"Web app: http://localhost:{WEB.port}  (development sign-in: "
              f"http://localhost:{WEB.port}/dev-login)")
    print("Caught mail: var/mail/*.eml  (.venv/bin/notifications mail list)")
    print("A service that dies is restarted. Ctrl-C stops everything.\n", flush=True)


def main() -> int:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    (ROOT / "var" / "mail").mkdir(parents=True, exist_ok=True)
    present = [s for s in SERVICES if available(s.module)]
    try:
        for service in present:
            if service.database is not None:
                subprocess.run([sys.executable, "-m", service.module, "migrate"],
                               env=service_env(service), check=True, cwd=ROOT)
        with supervising(present):
            for service in present:
                say(f"{service.name}: {'ready' if wait_ready(service) else 'NOT READY'} "
                    f"on {service.url}")
            # Contacts first, so the demo's own events already reach somebody's inbox.
            for service in sorted(present, key=lambda s: s.name != "notifications"):
                if service.database is not None:
                    subprocess.run([sys.executable, "-m", service.module, "seed-demo"],
                                   env=service_env(service), cwd=ROOT, check=False)
            banner(present)
            while True:
                time.sleep(3600)
    except Stop:
        return 0
    except subprocess.CalledProcessError as error:
        say(f"{' '.join(error.cmd[2:])} failed (exit {error.returncode}); see above")
        return 1


if __name__ == "__main__":
    sys.exit(main())
