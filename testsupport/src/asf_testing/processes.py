"""Services as their own processes, as they run in production, on free ports."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import httpx

from asf_testing.tokens import JWT_TEST_SECRET


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServiceProcess:
    """A service running as its own process, as it runs in production."""

    process: subprocess.Popen[bytes]
    base_url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


async def wait_ready(base_url: str, within: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    async with httpx.AsyncClient() as client:
        while asyncio.get_running_loop().time() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get(f"{base_url}/readyz")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise AssertionError(f"{base_url} did not become ready")


@contextlib.asynccontextmanager
async def service_process(
    module: str, env: dict[str, str], log_path: Path, *, ready: bool = True
) -> AsyncIterator[ServiceProcess]:
    """Start `python -m <module> serve` on a free port, in development with the tests'
    secret unless `env` says otherwise; SIGTERM it afterwards."""
    port = free_port()
    full_env = {**os.environ, "APP_ENV": "development", "JWT_SECRET": JWT_TEST_SECRET,
                "LOG_FORMAT": "json", "HOST": "127.0.0.1", "PORT": str(port), **env}
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", module, "serve"], env=full_env, stdout=log,
            stderr=subprocess.STDOUT,
        )
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
