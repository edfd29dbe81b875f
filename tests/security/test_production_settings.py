"""Production refuses to start with settings that are not safe (SPEC 2, issue 12 item 1),
tried from outside: each service started as a process with `APP_ENV=production` and a
secret written in this repository (or another rule broken) exits non-zero within 5 s with
one line naming the setting; with proper settings each one starts."""

from __future__ import annotations

import asyncio
import base64
import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import yaml

from asf_kit.settings import ServiceSettings
from asf_testing import JWT_TEST_SECRET, SigningKey
from casework.settings import CaseworkSettings
from notifications.settings import NotificationsSettings
from registry.settings import RegistrySettings
from web.settings import WebSettings

ROOT = Path(__file__).resolve().parents[2]
ISSUER = "https://idp.asf-samverkan.test/realms/kommun"
AUDIENCE = "asf-samverkan"
SETTINGS: dict[str, type[ServiceSettings]] = {
    "registry": RegistrySettings, "casework": CaseworkSettings,
    "notifications": NotificationsSettings,
}


def _run_local() -> Any:
    spec = importlib.util.spec_from_file_location("run_local", ROOT / "deploy" / "run_local.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def repository_secrets() -> list[tuple[str, str, str]]:
    """(where, setting, value) for the secrets the repository itself writes down."""
    found: list[tuple[str, str, str]] = [("the tests", "JWT_SECRET", JWT_TEST_SECRET)]
    with mock.patch.dict(os.environ, {}, clear=True):
        run_local = _run_local()
        env = run_local.service_env(run_local.SERVICES[1])  # casework
    found += [("make run", name, env[name]) for name in ("JWT_SECRET", "CASEWORK_DATA_KEY")]
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text(encoding="utf-8"))
    for service in compose["services"].values():
        for name, value in (service.get("environment") or {}).items():
            default = re.fullmatch(r"\$\{\w+:-(.+)\}", str(value))
            if default and re.search(r"SECRET|KEY|PASSWORD", name):
                found.append(("compose", name, default.group(1)))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found += [("README", m.group(1), m.group(2))
              for m in re.finditer(r"export (JWT_SECRET|CASEWORK_DATA_KEY)=(\S+)", readme)]
    return sorted(set(found))


def production_env(service: str, tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Proper production settings for `service`: a JWKS file with a key the test made,
    issuer, audience, a fresh data key, a real-looking SMTP relay."""
    env = {
        "APP_ENV": "production", "JWT_SECRET": "", "JWT_ALLOW_HS256": "false",
        "JWT_JWKS_FILE": str(SigningKey().jwks_file(tmp_path)),
        "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE,
    }
    if service == "casework":
        env["CASEWORK_DATA_KEY"] = base64.b64encode(os.urandom(32)).decode()
    if service == "notifications":
        env["SMTP_HOST"] = "smtp.asf-samverkan.test"
        env["SMTP_PORT"] = "587"
    env.update(overrides)
    return env


def settings_from(service: str, env: dict[str, str]) -> ServiceSettings:
    with mock.patch.dict(os.environ, env):
        return SETTINGS[service]()


def test_the_list_of_repository_values_is_in_step_with_the_repository() -> None:
    """A secret written into the repository without regenerating the list fails here."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "known_secrets.py"), "--check"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode == 0, result.stderr


def test_the_repository_values_are_found() -> None:
    where = {(origin, name) for origin, name, _ in repository_secrets()}
    assert {("the tests", "JWT_SECRET"), ("make run", "JWT_SECRET"),
            ("make run", "CASEWORK_DATA_KEY")} <= where


@pytest.mark.parametrize(("origin", "name", "value"), repository_secrets(),
                         ids=lambda v: str(v)[:24])
def test_every_secret_written_in_the_repository_is_refused(
    tmp_path: Path, origin: str, name: str, value: str,
) -> None:
    services = ["casework"] if name == "CASEWORK_DATA_KEY" else list(SETTINGS)
    for service in services:
        settings = settings_from(service, production_env(
            service, tmp_path, **{name: value, "JWT_ALLOW_HS256": "true"}))
        problems = settings.production_problems()
        assert problems and problems[0].startswith(f"{name} is a value written in the "
                                                   "repository"), (service, problems)


@pytest.mark.parametrize("service", list(SETTINGS))
def test_proper_production_settings_pass(tmp_path: Path, service: str) -> None:
    assert settings_from(service, production_env(service, tmp_path)).production_problems() \
        == []


async def refused_start(service: str, env: dict[str, str]) -> tuple[float, int, str]:
    """Start `<service> serve`; how long it took to exit, its exit code and its stderr."""
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", f"{service}.cli", "serve",
        env={**os.environ, "HOST": "127.0.0.1", "PORT": "9", **env},
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(f"{service} started with unsafe production settings") from None
    return time.monotonic() - started, process.returncode or 0, err.decode()


def _process_cases() -> list[tuple[str, str, dict[str, str]]]:
    """(service, the setting that must be named, what breaks it)."""
    cases: list[tuple[str, str, dict[str, str]]] = []
    jwt_values = sorted({v for _, name, v in repository_secrets() if name == "JWT_SECRET"})
    for value in jwt_values:
        for service in SETTINGS:
            cases.append((service, "JWT_SECRET", {
                "JWT_JWKS_FILE": "", "JWT_SECRET": value, "JWT_ALLOW_HS256": "true"}))
    for value in sorted({v for _, n, v in repository_secrets() if n == "CASEWORK_DATA_KEY"}):
        cases.append(("casework", "CASEWORK_DATA_KEY", {"CASEWORK_DATA_KEY": value}))
    cases += [
        ("casework", "CASEWORK_DATA_KEY", {
            "CASEWORK_DATA_KEY": base64.b64encode(b"sixteen byte key").decode()}),
        ("registry", "JWT_ALLOW_HS256", {"JWT_JWKS_FILE": "", "JWT_SECRET": "s" * 64}),
        ("casework", "JWT_ISSUER", {"JWT_ISSUER": ""}),
        ("notifications", "JWT_AUDIENCE", {"JWT_AUDIENCE": ""}),
        ("registry", "JWT_JWKS_URL", {"JWT_JWKS_FILE": ""}),
        ("notifications", "SMTP_HOST", {"SMTP_HOST": ""}),
    ]
    if "smtp_tls" in NotificationsSettings.model_fields:
        cases.append(("notifications", "SMTP_TLS", {"SMTP_TLS": "none"}))
    return cases


@pytest.mark.parametrize(("service", "named", "breaks"), _process_cases(),
                         ids=lambda v: str(v)[:20])
async def test_a_service_refuses_to_start_naming_the_setting(
    tmp_path: Path, service: str, named: str, breaks: dict[str, str],
) -> None:
    took, code, err = await refused_start(service, production_env(service, tmp_path, **breaks))
    assert code != 0
    lines = err.strip().splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    assert named in lines[0] and "APP_ENV=production" in lines[0]
    assert took < 5, f"{service} took {took:.1f} s to refuse"


def test_smtp_tls_none_is_refused_in_production(tmp_path: Path) -> None:
    """Read through the setting itself, whichever branch brings `SMTP_TLS`."""
    settings = settings_from("notifications", production_env("notifications", tmp_path))
    object.__setattr__(settings, "smtp_tls", "none")
    assert any(p.startswith("SMTP_TLS is none") for p in settings.production_problems())


async def test_the_web_app_refuses_a_session_secret_written_in_the_repository() -> None:
    """The web app verifies no token itself; its own secret is the session key. With the
    browser tests' key (written in this repository) and otherwise proper settings, it
    exits within 5 s naming `SESSION_SECRET`; with a fresh key it gets past the check."""
    proper = {"APP_ENV": "production", "OIDC_ISSUER": "https://idp.asf-samverkan.test",
              "OIDC_CLIENT_ID": "asf-web", "OIDC_CLIENT_SECRET": base64.b64encode(
                  os.urandom(32)).decode()}
    known = (ROOT / "services/web/tests/stack.py").read_text(encoding="utf-8")
    value = re.search(r'SESSION_SECRET = "([^"]+)"', known)
    assert value is not None
    took, code, err = await refused_start("web", {**proper, "SESSION_SECRET": value.group(1)})
    lines = err.strip().splitlines()
    assert code != 0 and len(lines) == 1, err
    assert "SESSION_SECRET" in lines[0] and "APP_ENV=production" in lines[0]
    assert took < 5, f"web took {took:.1f} s to refuse"
    with mock.patch.dict(os.environ, {**proper,
                                      "SESSION_SECRET": base64.b64encode(os.urandom(32)).decode()}):
        assert WebSettings().production_problems() == []
