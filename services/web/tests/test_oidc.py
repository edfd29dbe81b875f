"""Sign-in through a real OpenID Connect provider (oidc-provider-mock, its own process):
authorization code with PKCE, the APIs accepting the forwarded token through their JWKS
mode, and sign-out ending the provider's session too."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from playwright.sync_api import expect

from asf_testing import free_port

from .stack import Stack, stack_in_thread

CLIENT_ID = "asf-web"
CASE_WORKER = {"sub": "cw-oidc-1", "name": "Olga Oidc", "roles": ["case_worker"],
               "municipality_code": "0180"}


@pytest.fixture(scope="module")
def provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = (tmp_path_factory.mktemp("oidc") / "provider.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "oidc_provider_mock", "--port", str(port),
         "--user-claims", json.dumps(CASE_WORKER), "--token-max-age", "600"],
        stdout=log, stderr=subprocess.STDOUT)
    issuer = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{issuer}/.well-known/openid-configuration").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("the OIDC provider did not start")
            time.sleep(0.2)
        yield issuer
    finally:
        process.terminate()
        process.wait(10)
        log.close()


@pytest.fixture(scope="module")
def oidc_stack(postgres_url: str, broker_url: str, provider: str,
               tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    logs: Path = tmp_path_factory.mktemp("web-oidc-stack")
    jwks = {"JWT_JWKS_URL": f"{provider}/jwks", "JWT_ISSUER": provider,
            "JWT_AUDIENCE": CLIENT_ID, "JWT_SECRET": ""}
    web = {"OIDC_ISSUER": provider, "OIDC_CLIENT_ID": CLIENT_ID,
           "OIDC_CLIENT_SECRET": "oidc-test-client-secret-0123456789abcdef",
           # The provider's access tokens are opaque; its ID token is the signed JWT
           # with the claims, so that is what the APIs get here.
           "OIDC_API_TOKEN": "id_token", "JWT_SECRET": ""}
    with stack_in_thread(postgres_url, broker_url, logs, web_env=web, api_env=jwks) as s:
        yield s


def test_sign_in_with_the_provider_then_sign_out(oidc_stack: Stack, page: Any) -> None:
    base = oidc_stack.url
    page.goto(f"{base}/caseload")
    # Not signed in: off to the provider, with PKCE.
    assert page.url.startswith(oidc_stack.env["OIDC_ISSUER"])
    query = parse_qs(urlsplit(page.url).query)
    assert query["code_challenge_method"] == ["S256"] and query["code_challenge"][0]
    assert query["client_id"] == [CLIENT_ID]
    page.get_by_role("button", name=CASE_WORKER["sub"]).click()
    page.wait_for_url(f"{base}/caseload")
    # casework accepted the forwarded token through its JWKS: the caseload rendered.
    expect(page.get_by_role("heading", name="Ärenden")).to_be_visible()
    expect(page.get_by_text("Olga Oidc")).to_be_visible()
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["asf_session"]["httpOnly"] is True
    assert page.evaluate("() => document.cookie") == ""  # nothing readable by JavaScript

    page.get_by_role("button", name="Logga ut").click()
    # The provider's end-session endpoint, told who signs out and where to come back.
    assert page.url.startswith(f"{oidc_stack.env['OIDC_ISSUER']}/oauth2/end_session")
    query = parse_qs(urlsplit(page.url).query)
    assert query["id_token_hint"][0].count(".") == 2
    assert query["post_logout_redirect_uri"] == [f"{base}/signed-out"]
    page.get_by_role("button", name="End session").click()
    page.wait_for_url(f"{base}/signed-out")
    expect(page.get_by_role("heading", name="Du är utloggad")).to_be_visible()
    page.goto(f"{base}/caseload")
    assert page.url.startswith(oidc_stack.env["OIDC_ISSUER"])  # signed out for real


def test_dev_login_is_not_offered_when_oidc_is_set(oidc_stack: Stack) -> None:
    r = httpx.get(f"{oidc_stack.url}/sign-in?next=/caseload")
    assert r.status_code == 302 and r.headers["location"].startswith(
        oidc_stack.env["OIDC_ISSUER"])
