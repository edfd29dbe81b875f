"""Run the whole stack on this machine, in the foreground, with demo data.

For machines without Docker: PostgreSQL and RabbitMQ must already be installed here
(`deploy/ensure_services.sh` starts them if they are stopped). Each service is started
as its own process, exactly as it would be deployed; with no SMTP_HOST set, the
notifications service catches mail itself into `var/mail/`. Ctrl-C stops everything.
"""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEV_SECRET = "dev-secret-change-me-0123456789abcdef0123456789"

SERVICES = [
    # name, module, port, database
    ("registry", "registry.cli", 8001, "asf_registry"),
    ("casework", "casework.cli", 8002, "asf_casework"),
    ("notifications", "notifications.cli", 8003, "asf_notifications"),
]


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def service_env(name: str, port: int, database: str) -> dict[str, str]:
    env = dict(os.environ)
    pg = env.get("POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432")
    env["APP_ENV"] = "development"  # development secrets, the mail catcher, HS256 tokens
    env.setdefault("JWT_SECRET", DEV_SECRET)
    env.setdefault("LOG_FORMAT", "console")
    env[f"{name.upper()}_PORT"] = str(port)
    env["PORT"] = env.get(f"{name.upper()}_PORT", str(port))
    env["DATABASE_URL"] = env.get(f"{name.upper()}_DATABASE_URL", f"{pg}/{database}")
    env.setdefault("MAILCATCHER_DIR", str(ROOT / "var" / "mail"))
    env.setdefault("FRONTEND_BASE_URL", "http://localhost:8000")  # the web app
    # A stable development key so demo data stays readable across restarts.
    env.setdefault("CASEWORK_DATA_KEY", "ZGV2LWtleS1kZXYta2V5LWRldi1rZXktZGV2LWtleSE=")
    return env


def run(cmd: list[str], env: dict[str, str]) -> None:
    subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def wait_ready(port: int, timeout: float = 60) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def token(module: str, env: dict[str, str], *args: str) -> str:
    out = subprocess.run([sys.executable, "-m", module, "token", *args], env=env, check=True,
                         capture_output=True, text=True, cwd=ROOT)
    return out.stdout.strip()


def main() -> int:
    if subprocess.run(["bash", str(ROOT / "deploy" / "ensure_services.sh")]).returncode != 0:
        print("PostgreSQL and RabbitMQ must run first; see the messages above.")
        return 1
    (ROOT / "var" / "mail").mkdir(parents=True, exist_ok=True)
    present = [s for s in SERVICES if available(s[1])]
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name, module, port, database in present:
            env = service_env(name, port, database)
            run([sys.executable, "-m", module, "migrate"], env)
            procs.append(subprocess.Popen([sys.executable, "-m", module, "serve"], env=env,
                                          cwd=ROOT))
        for name, _, port, _ in present:
            print(f"{name}: {'ready' if wait_ready(port) else 'NOT READY'} on :{port}")
        # Contacts first, so the demo's own events already reach somebody's inbox.
        for name, module, port, database in sorted(present, key=lambda s: s[0] != "notifications"):
            env = service_env(name, port, database)
            subprocess.run([sys.executable, "-m", module, "seed-demo"], env=env, cwd=ROOT,
                           check=False)
        env = service_env("registry", 8001, "asf_registry")
        print("\nThe stack is up. Development tokens (12 h):")
        print("  registry officer:", token("registry.cli", env, "--sub", "officer-1",
                                             "--role", "registry_officer"))
        print("  case worker 0180:", token("registry.cli", env, "--sub", "cw-stockholm-1",
                                             "--role", "case_worker", "--municipality", "0180"))
        print("  analyst:         ", token("registry.cli", env, "--sub", "analyst-1",
                                             "--role", "analyst"))
        print("\nOpenAPI: http://127.0.0.1:8001/docs  http://127.0.0.1:8002/docs  "
              "http://127.0.0.1:8003/docs")
        print("Caught mail: var/mail/*.eml  (uv run notifications mail list)\nCtrl-C stops.\n")
        while all(p.poll() is None for p in procs):
            time.sleep(1)
        print("a service exited; stopping the rest")
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=25)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    sys.exit(main())
