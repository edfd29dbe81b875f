"""Sending over SMTP: one connection per sweep batch, a new one after it drops, and TLS as
SMTP_TLS says (STARTTLS by default, TLS from the first byte, or plain for development),
against aiosmtpd with a self-signed certificate made here."""

from __future__ import annotations

import datetime as dt
import ipaddress
import uuid
from collections.abc import AsyncIterator, Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from asf_contracts import registry as reg
from asf_contracts.topology import ServiceQueues
from asf_testing import (
    JWT_TEST_SECRET,
    SmtpServer,
    auth,
    delete_queues,
    fresh_database,
    unique_namespace,
)
from notifications.app import create_app
from notifications.sender import Mailer
from notifications.settings import NotificationsSettings

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    """A self-signed certificate for 127.0.0.1 and localhost: (certificate file, key file)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asf-test-smtp")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    pem, pkcs8 = serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8
    cert_file, key_file = folder / "smtp.crt", folder / "smtp.key"
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(key.private_bytes(pem, pkcs8, serialization.NoEncryption()))
    return str(cert_file), str(key_file)


@pytest.fixture
def server(request: pytest.FixtureRequest, certificate: tuple[str, str]) -> Iterator[SmtpServer]:
    """An SMTP server speaking `request.param` ("none", "starttls" or "tls")."""
    s = SmtpServer(tls=getattr(request, "param", "none"), certificate=certificate)
    s.up()
    yield s
    s.down()


def settings(port: int, tls: str, **extra: Any) -> NotificationsSettings:
    return NotificationsSettings(**{"jwt_secret": "x", "smtp_host": "127.0.0.1",
                                    "smtp_port": port, "smtp_tls": tls, "smtp_timeout": 5,
                                    **extra})


def message(to: str, subject: str = "Hej") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "noreply@asf.test", to, subject
    msg["Message-ID"] = f"<{uuid.uuid4()}@asf-samverkan>"
    msg.set_content("text")
    return msg


async def test_a_batch_uses_one_connection_and_a_new_one_after_it_drops(
    server: SmtpServer,
) -> None:
    server.disconnect.add("drop@example.se")
    async with Mailer(settings(server.port, "none")) as mailer:
        outcomes = [await mailer.send(message(to)) for to in (
            "a@example.se", "b@example.se", "drop@example.se", "c@example.se",
            "d@example.se")]
        assert mailer.connections == 2
    assert [o for o, _ in outcomes] == ["sent", "sent", "retry", "sent", "sent"]
    assert str(outcomes[2][1]).startswith("421")
    by_address = {str(r.message["To"]): r.connection for r in server.handler.received}
    assert by_address == {"a@example.se": 1, "b@example.se": 1, "c@example.se": 2,
                          "d@example.se": 2}


async def test_refusals_keep_the_connection(server: SmtpServer) -> None:
    server.reject.add("gone@example.se")
    server.tempfail.add("busy@example.se")
    async with Mailer(settings(server.port, "none")) as mailer:
        outcomes = [(await mailer.send(message(to)))[0] for to in (
            "gone@example.se", "busy@example.se", "ok@example.se")]
        assert mailer.connections == 1
    assert outcomes == ["fail", "retry", "sent"]


async def test_when_no_connection_can_be_opened_the_rest_of_the_batch_waits(
    server: SmtpServer,
) -> None:
    server.down()
    async with Mailer(settings(server.port, "none")) as mailer:
        first = await mailer.send(message("a@example.se"))
        server.up()  # too late for this batch: it is not tried again
        second = await mailer.send(message("b@example.se"))
        assert mailer.connections == 0
    assert first[0] == second[0] == "retry"
    assert "could not be opened" in str(first[1])
    assert str(second[1]).startswith("not tried: the SMTP connection could not be opened")
    assert server.handler.received == []


@pytest.mark.parametrize("server", ["starttls"], indirect=True)
async def test_starttls_with_the_servers_certificate(
    server: SmtpServer, certificate: tuple[str, str]
) -> None:
    async with Mailer(settings(server.port, "starttls", smtp_ca_file=certificate[0])) as m:
        assert await m.send(message("a@example.se")) == ("sent", None)
    [received] = server.handler.received
    assert received.tls is True
    # A certificate nobody vouches for is refused; so is plain text where TLS is required.
    async with Mailer(settings(server.port, "starttls")) as m:
        outcome, error = await m.send(message("b@example.se"))
    assert outcome == "retry" and "CERTIFICATE_VERIFY_FAILED" in str(error)
    async with Mailer(settings(server.port, "none")) as m:
        outcome, error = await m.send(message("c@example.se"))
    assert outcome == "fail" and str(error).startswith("530")
    assert len(server.handler.received) == 1


@pytest.mark.parametrize("server", ["tls"], indirect=True)
async def test_tls_from_the_first_byte(server: SmtpServer, certificate: tuple[str, str]
                                       ) -> None:
    async with Mailer(settings(server.port, "tls", smtp_ca_file=certificate[0])) as m:
        for to in ("a@example.se", "b@example.se"):
            assert await m.send(message(to)) == ("sent", None)
    assert [(r.tls, r.connection) for r in server.handler.received] == [(True, 1), (True, 1)]
    # A client waiting for a plain greeting gets none: it times out and tries later.
    async with Mailer(settings(server.port, "starttls", smtp_timeout=0.5)) as m:
        outcome, _ = await m.send(message("c@example.se"))
    assert outcome == "retry" and len(server.handler.received) == 2


async def test_starttls_is_required_by_default(server: SmtpServer) -> None:
    """The default, `starttls`, never falls back to plain text."""
    s = NotificationsSettings(jwt_secret="x", smtp_host="127.0.0.1", smtp_port=server.port)
    async with Mailer(s) as m:
        outcome, error = await m.send(message("a@example.se"))
    assert outcome == "retry" and "STARTTLS" in str(error)
    assert server.handler.received == []


async def test_a_sweep_sends_its_batch_over_one_connection(
    client: httpx.AsyncClient, analyst: dict[str, str], publish: Any, new_contact: Any,
    smtp: Any, eventually: Any, deliveries: Any,
) -> None:
    role = f"team_{uuid.uuid4().hex[:6]}"
    contacts = [await new_contact(role) for _ in range(4)]
    r = await client.post("/subscriptions", headers=analyst, json={
        "event_type": reg.LEARNING_EXAMPLE_SUBMITTED, "role": role})
    assert r.status_code == 201, r.text
    title = f"Batch {uuid.uuid4().hex[:6]}"
    event = await publish(reg.LEARNING_EXAMPLE_SUBMITTED, {
        "id": str(uuid.uuid4()), "municipality_code": "0180", "company_ids": [],
        "title": title, "summary": "S", "collaboration_types": ["other"],
        "contact": {"name": "N", "email": "n@example.se"}})

    async def all_sent() -> bool:
        items = await deliveries(event_id=event.event_id)
        mine = [d for d in items if d["contact_id"] in {c["id"] for c in contacts}]
        return len(mine) == 4 and all(d["status"] == "sent" for d in mine)

    await eventually(all_sent, what="four deliveries sent")
    mails = [m for c in contacts for m in smtp.to(c["email"], title)]
    assert len(mails) == 4
    assert len(smtp.connections_of(mails)) == 1


@pytest.fixture
async def tls_service(
    postgres_url: str, broker_url: str, certificate: tuple[str, str]
) -> AsyncIterator[tuple[httpx.AsyncClient, SmtpServer]]:
    """The whole service, configured as in production: STARTTLS (the default)."""
    smtp = SmtpServer(tls="starttls", certificate=certificate)
    smtp.up()
    namespace = unique_namespace()
    try:
        async with fresh_database(postgres_url, "notifications_tls", MIGRATIONS) as dsn:
            app = create_app(NotificationsSettings(
                database_url=dsn, broker_url=broker_url, jwt_secret=JWT_TEST_SECRET,
                queue_namespace=namespace, smtp_host="127.0.0.1", smtp_port=smtp.port,
                smtp_ca_file=certificate[0], sweeper_interval=0.5, digest_enabled=False))
            async with LifespanManager(app, startup_timeout=30, shutdown_timeout=30), \
                    httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                      base_url="http://n") as client:
                yield client, smtp
    finally:
        smtp.down()
        await delete_queues(broker_url, ServiceQueues(service=namespace + "notifications"))


async def test_the_service_sends_over_starttls_by_default(
    tls_service: tuple[httpx.AsyncClient, SmtpServer], publish: Any, eventually: Any,
) -> None:
    client, smtp = tls_service
    email = f"tls-{uuid.uuid4().hex[:8]}@example.se"
    r = await client.post("/contacts", headers=auth("analyst"), json={
        "name": "Info", "email": email, "role": "information_officer"})
    assert r.status_code == 201, r.text
    title = f"Krypterat {uuid.uuid4().hex[:6]}"
    await publish(reg.LEARNING_EXAMPLE_SUBMITTED, {
        "id": str(uuid.uuid4()), "municipality_code": "0180", "company_ids": [],
        "title": title, "summary": "S", "collaboration_types": ["other"],
        "contact": {"name": "N", "email": "n@example.se"}})
    [mail] = await eventually(lambda: smtp.to(email, title), what="the email over TLS")
    [received] = [r for r in smtp.handler.received if r.message is mail]
    assert received.tls is True
