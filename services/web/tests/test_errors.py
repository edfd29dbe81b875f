"""Errors that help: a 422 beside its field, a 409 naming the allowed steps, a 412 offering
a reload, a duplicate leading to the existing case, an API that is down or slow giving a
page with the correlation id, a 401 signing the person out, a cross-site POST refused."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest

from asf_testing import JWT_TEST_SECRET, free_port

from .stack import (
    PEOPLE,
    SESSION_SECRET,
    Stack,
    csrf_of,
    identity_number,
    post_form,
    run_async,
    sign_in,
)


def _new_case(client: httpx.Client, number: str | None = None) -> str:
    r = post_form(client, "/participants/new", "/participants/new", {
        "given_name": "Fel", "family_name": "Felsson",
        "personal_identity_number": number or identity_number(), "referral_source": "self"})
    assert r.status_code == 303, r.text[:2000]
    return r.headers["location"].rsplit("/", 1)[1]


def test_a_duplicate_identity_number_leads_to_the_existing_case(stack: Stack) -> None:
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    number = identity_number()
    pid = _new_case(cw, number)
    r = post_form(cw, "/participants/new", "/participants/new", {
        "given_name": "Fel", "family_name": "Igen", "personal_identity_number": number,
        "referral_source": "self"})
    assert r.status_code == 303 and r.headers["location"] == f"/participants/{pid}"
    assert "redan ett öppet ärende" in cw.get(r.headers["location"]).text


def test_a_409_names_the_allowed_steps(stack: Stack) -> None:
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    pid = _new_case(cw)
    r = post_form(cw, f"/participants/{pid}", f"/participants/{pid}/transitions", {
        "to": "employed", "employment.form": "wage_subsidy", "employment.start": "2026-11-02",
        "employment.employer_name": "Någon"})
    assert r.status_code == 409
    assert "Tillåtna steg: Kartläggning, Avslutad." in r.text


def test_a_412_says_someone_else_changed_it_and_offers_a_reload(stack: Stack) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    from .stack import company_form

    r = post_form(officer, "/companies/new", "/companies/new", company_form("Samtidiga AB"))
    cid = r.headers["location"].rsplit("/", 1)[1]
    stale_page = officer.get(f"/companies/{cid}/edit").text
    form = company_form("Samtidiga AB")
    form.pop("org_number")
    r = post_form(officer, f"/companies/{cid}/edit", f"/companies/{cid}/edit",
                  {**form, "name": "Samtidiga AB (först)", "version": "1"})
    assert r.status_code == 303, r.text[:2000]
    r = officer.post(f"/companies/{cid}/edit", data={
        **form, "name": "Samtidiga AB (sist)", "version": "1",
        "csrf_token": csrf_of(stale_page)})
    assert r.status_code == 412
    assert "Någon annan har ändrat företaget" in r.text
    assert f'href="/companies/{cid}/edit"' in r.text


def test_a_422_is_shown_beside_each_field_with_a_summary(stack: Stack) -> None:
    officer = sign_in(stack.url, PEOPLE["registry_officer"])
    from .stack import company_form

    form = company_form("Felaktiga AB")
    form["org_number"] = "212000-0142"  # group digit 2: a public body
    form["workforce.target_group_engaged"] = "50"
    r = post_form(officer, "/companies/new", "/companies/new", form)
    assert r.status_code == 422
    assert 'class="error-summary"' in r.text
    assert 'href="#f-org_number"' in r.text and 'id="f-org_number-error"' in r.text
    assert "Organisationsnummer:" in r.text


def test_a_cross_site_post_is_refused(stack: Stack) -> None:
    cw = sign_in(stack.url, PEOPLE["case_worker"])
    token = csrf_of(cw.get("/participants/new").text)
    data = {"given_name": "X", "family_name": "Y", "personal_identity_number":
            identity_number(), "referral_source": "self"}
    r = cw.post("/participants/new", data={**data, "csrf_token": token},
                headers={"Origin": "https://evil.example"})
    assert r.status_code == 403 and "Formuläret kunde inte skickas" in r.text
    r = cw.post("/participants/new", data=data)  # no token
    assert r.status_code == 403
    r = cw.post("/participants/new", data={**data, "csrf_token": "forged"})
    assert r.status_code == 403


def test_the_session_cookie_is_sealed_and_http_only(stack: Stack) -> None:
    client = httpx.Client(base_url=stack.url)
    page = client.get("/dev-login")
    r = client.post("/dev-login", data={**PEOPLE["case_worker"], "next": "/",
                                        "csrf_token": csrf_of(page.text)})
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # development over plain HTTP; production sets it
    value = cookie.split(";")[0].split("=", 1)[1]
    assert "eyJ" not in value and "cw-web-1" not in value  # no readable token or claims


def test_dev_login_is_404_in_production(stack: Stack) -> None:
    run_async(_test_dev_login_is_404_in_production(stack))


async def _test_dev_login_is_404_in_production(stack: Stack) -> None:
    import secrets

    from web.app import create_app
    from web.settings import WebSettings

    app = create_app(WebSettings(
        app_env="production", session_secret=secrets.token_urlsafe(32),
        oidc_issuer="https://idp.example", oidc_client_id="asf-web",
        oidc_client_secret=secrets.token_urlsafe(32), jwt_secret=secrets.token_urlsafe(32)))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="https://web") as c:  # Secure cookies: HTTPS
        assert (await c.get("/dev-login")).status_code == 404
        page = await c.get("/signed-out")
        r = await c.post("/dev-login", data={"sub": "x", "role": "analyst",
                                             "csrf_token": csrf_of(page.text)})
        assert r.status_code == 404


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """Accepts connections and never answers: an API that hangs."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(50)
    port = sock.getsockname()[1]
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def run() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                accepted.append(sock.accept()[0])

    t = threading.Thread(target=run, daemon=True)
    t.start()
    try:
        yield port
    finally:
        stop.set()
        t.join()
        for c in accepted:
            c.close()
        sock.close()


def _web(stack: Stack, **overrides: str) -> httpx.AsyncClient:
    from web.app import create_app
    from web.settings import WebSettings

    settings = WebSettings(**{
        "app_env": "development", "session_secret": SESSION_SECRET,
        "jwt_secret": JWT_TEST_SECRET,
        "registry_url": stack.registry.base_url, "casework_url": stack.casework.base_url,
        "notifications_url": stack.notifications.base_url, "api_timeout": 1.0,
        **overrides})
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(settings)),
                             base_url="http://web")


async def _signed_in(c: httpx.AsyncClient, person: dict[str, str]) -> None:
    page = await c.get("/dev-login")
    r = await c.post("/dev-login", data={**person, "next": "/",
                                         "csrf_token": csrf_of(page.text)})
    assert r.status_code == 303, r.text[:1000]


@pytest.mark.parametrize("how", ["down", "slow"])
def test_an_api_down_or_slow_gives_a_page_with_the_correlation_id(
        stack: Stack, how: str) -> None:
    run_async(_test_an_api_down_or_slow_gives_a_page_with_the_correlation_id(stack, how))


async def _test_an_api_down_or_slow_gives_a_page_with_the_correlation_id(
        stack: Stack, how: str) -> None:
    with silent_server() as silent:
        url = f"http://127.0.0.1:{free_port() if how == 'down' else silent}"
        async with _web(stack, registry_url=url) as c:
            await _signed_in(c, PEOPLE["registry_officer"])
            r = await c.get("/review", headers={"X-Correlation-Id": f"corr-{how}-1"})
    assert r.status_code == 503
    assert "Tjänsten är inte tillgänglig" in r.text
    assert ("svarar för långsamt" if how == "slow" else "går inte att nå") in r.text
    assert "corr-" + how + "-1" in r.text
    assert "Traceback" not in r.text


def test_a_401_from_an_api_signs_the_person_out(stack: Stack) -> None:
    run_async(_test_a_401_from_an_api_signs_the_person_out(stack))


async def _test_a_401_from_an_api_signs_the_person_out(stack: Stack) -> None:
    # Tokens signed with another secret than the APIs know: every call is a 401.
    async with _web(stack, jwt_secret="another-secret-another-secret-0123456789") as c:
        await _signed_in(c, PEOPLE["case_worker"])
        r = await c.get("/caseload")
        assert r.status_code == 303
        assert r.headers["location"] == "/sign-in?next=%2Fcaseload"
        r = await c.get("/caseload")  # the session is gone: straight to sign-in
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")
        page = await c.get("/signed-out")
        assert "Logga ut" not in page.text


def test_the_caseload_works_with_the_stream_down(stack: Stack) -> None:
    run_async(_test_the_caseload_works_with_the_stream_down(stack))


async def _test_the_caseload_works_with_the_stream_down(stack: Stack) -> None:
    with silent_server():
        async with _web(stack) as c:
            await _signed_in(c, PEOPLE["case_worker"])
            # casework's stream answers, but as if it were gone: the relay tells the
            # browser to try later, and the page itself does not depend on it.
            r = await c.get("/caseload")
            assert r.status_code == 200
    async with _web(stack, casework_url=f"http://127.0.0.1:{free_port()}") as c:
        await _signed_in(c, PEOPLE["case_worker"])
        r = await c.get("/caseload/stream")
        assert r.status_code == 200 and r.text.startswith("retry:")
