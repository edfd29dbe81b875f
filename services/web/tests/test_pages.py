"""Every page renders for the role it is for, over HTTP (no browser): the fast layer."""

from __future__ import annotations

import httpx

from .stack import PEOPLE, Stack, sign_in


def test_dev_login_lists_demo_people_and_signs_in(stack: Stack) -> None:
    anonymous = httpx.Client(base_url=stack.url)
    page = anonymous.get("/dev-login")
    assert page.status_code == 200
    assert "Maja Handläggare" in page.text and "Rut Registrator" in page.text
    client = sign_in(stack.url, PEOPLE["case_worker"])
    r = client.get("/")
    assert r.status_code == 303 and r.headers["location"] == "/caseload"
    r = client.get("/caseload")
    assert r.status_code == 200, r.text[:3000]
    assert r.headers["cache-control"] == "no-store"
