"""The images, as written and as built: each Dockerfile's promises (slim, multi-stage, non-root,
healthcheck, only its own code), then every image built with the machine's container engine
and started on the host network against the machine's PostgreSQL and RabbitMQ in production
mode. The built part is skipped, with the reason, where neither podman nor docker works."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from asf_contracts.topology import ServiceQueues
from asf_testing import (
    SigningKey,
    SmtpServer,
    auth,
    delete_queues,
    free_port,
    org_number,
    text_of,
    wait_ready,
    with_database,
)

ROOT = Path(__file__).resolve().parents[2]
PYTHON_SERVICES = {"registry": 8001, "casework": 8002, "notifications": 8003}
"""The services started by the smoke test below (the web app's image is built and checked)."""
PORTS = {**PYTHON_SERVICES, "web": 8000}
DOCKERFILES = sorted(p.parent.name for p in ROOT.glob("services/*/Dockerfile"))


def stages(text: str) -> list[list[str]]:
    """The Dockerfile's instructions (continuation lines joined), split by FROM."""
    joined = re.sub(r"\\\n\s*", " ", text)
    lines = [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.startswith("#")]
    out: list[list[str]] = []
    for line in lines:
        if line.startswith("FROM "):
            out.append([])
        out[-1].append(line)
    return out


@pytest.mark.parametrize("service", DOCKERFILES)
def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck(service: str) -> None:
    """Every service's Dockerfile, a new one's too (copy services/registry/Dockerfile)."""
    text = (ROOT / "services" / service / "Dockerfile").read_text()
    manifests, build, final = stages(text)
    assert all(s[0].startswith("FROM python:3.11-slim") for s in (manifests, build, final))
    # The first stage keeps only the workspace's pyproject files and the lock, so a new
    # workspace member never breaks an image and the dependency layer is cached.
    assert "COPY . ." in manifests
    assert any("! -name pyproject.toml ! -name uv.lock -delete" in s for s in manifests)
    copied = [s.split()[1] for s in build if s.startswith("COPY ") and "--from" not in s]
    assert copied == ["contracts", "kit", f"services/{service}"], copied
    assert f"--no-install-workspace --package asf-{service}" in " ".join(build)
    assert f"--no-editable --package asf-{service}" in " ".join(build)
    # The image itself: the virtualenv only, a numeric non-root user, a healthcheck.
    assert [s for s in final if s.startswith("COPY")] == ["COPY --from=build /opt/venv /opt/venv"]
    assert "USER 10001" in final
    assert any(s.startswith("HEALTHCHECK") and "/healthz" in s for s in final)
    assert f"PORT={PORTS[service]}" in " ".join(final)
    assert final[-2:] == [f'ENTRYPOINT ["{service}"]', 'CMD ["serve"]']


def test_nothing_of_this_machine_is_committed() -> None:
    """Certificates and proxies are passed to a build as secrets, never written in a file."""
    for dockerfile in ROOT.glob("services/*/Dockerfile"):
        text = dockerfile.read_text().lower()
        for word in ("proxy=", "http_proxy", "https_proxy", "begin certificate", "egress"):
            assert word not in text, (dockerfile, word)


# --- the images, built and started ------------------------------------------------------------

ISSUER, AUDIENCE = "https://login.asf-smoke.example", "asf-samverkan"
SMTP_NAME = "smtp.asf-smoke.example"  # resolves to 127.0.0.1 inside the containers


class Operator:
    """What an operator provides: a signing key behind a JWKS file, and the SMTP relay's
    certificate (and the CA the services must trust for it), in one folder mounted
    read-only into every container."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.key = SigningKey("smoke-key-1")
        self.key.jwks_file(folder).rename(folder / "jwks.json")
        cert, key = _self_signed(SMTP_NAME)
        (folder / "smtp-ca.pem").write_bytes(cert)
        (folder / "smtp-key.pem").write_bytes(key)
        for path in folder.iterdir():
            path.chmod(0o644)  # read by the containers' non-root user
        folder.chmod(0o755)

    def auth(self, roles: list[str], **claims: Any) -> dict[str, str]:
        token = self.key.token("smoke-1", roles, lifetime=600, iss=ISSUER, aud=AUDIENCE,
                               **claims)
        return {"Authorization": f"Bearer {token}"}


def _self_signed(name: str) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


@pytest.fixture(scope="module")
def operator(tmp_path_factory: pytest.TempPathFactory) -> Operator:
    return Operator(tmp_path_factory.mktemp("operator"))


@pytest.fixture(scope="module")
def smtp(operator: Operator) -> Iterator[SmtpServer]:
    """The SMTP relay, in the test process, insisting on STARTTLS."""
    server = SmtpServer(tls="starttls", certificate=(str(operator.folder / "smtp-ca.pem"),
                                                     str(operator.folder / "smtp-key.pem")))
    server.up()
    try:
        yield server
    finally:
        server.down()


@dataclass
class Running:
    name: str
    url: str


@pytest.fixture(scope="module")
async def stack(engine: Any, images: dict[str, str], operator: Operator, smtp: SmtpServer,
                postgres_url: str, broker_url: str) -> AsyncIterator[dict[str, Running]]:
    """Each Python service's image, migrated by its own `migrate` and started with `serve`,
    in production mode, read-only, on the host network; stopped and removed afterwards."""
    tag = uuid.uuid4().hex[:8]
    namespace = f"smoke-{tag}."
    secrets = {"casework": {"CASEWORK_DATA_KEY": base64.b64encode(os.urandom(32)).decode()},
               "notifications": {"SMTP_HOST": SMTP_NAME, "SMTP_PORT": str(smtp.port),
                                 "SMTP_TLS": "starttls",
                                 "SSL_CERT_FILE": "/run/operator/smtp-ca.pem",
                                 "MAIL_FROM": "ASF Samverkan <noreply@asf-smoke.example>",
                                 "FRONTEND_BASE_URL": "https://samverkan.asf-smoke.example"}}
    read_only = ["--read-only"] + (["--read-only-tmpfs=false"] if engine.name == "podman" else [])
    running: dict[str, Running] = {}
    databases = []
    try:
        for service in PYTHON_SERVICES:
            database = f"smoke_{tag}_{service}"
            databases.append(database)
            port = free_port()
            env = {"APP_ENV": "production", "DATABASE_URL": with_database(postgres_url, database),
                   "BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace, "HOST": "127.0.0.1",
                   "PORT": str(port), "JWT_JWKS_FILE": "/run/operator/jwks.json",
                   "JWT_ISSUER": ISSUER, "JWT_AUDIENCE": AUDIENCE, **secrets.get(service, {})}
            options = [*engine.run_options(), *read_only, "--add-host", f"{SMTP_NAME}:127.0.0.1",
                       "-v", f"{operator.folder}:/run/operator:ro",
                       *[f"--env={k}={v}" for k, v in env.items()]]
            migrated = await asyncio.to_thread(
                engine.run, "run", "--rm", *options, images[service], "migrate", check=False,
                quiet=True, timeout=180)
            assert migrated.returncode == 0, (service, migrated.stdout, migrated.stderr)
            name = f"asf-smoke-{tag}-{service}"
            await asyncio.to_thread(engine.run, "run", "-d", "--name", name, *options,
                                    images[service], quiet=True, timeout=120)
            running[service] = Running(name, f"http://127.0.0.1:{port}")
        for service, r in running.items():
            try:
                await wait_ready(r.url, within=90)
            except AssertionError:
                logs = engine.run("logs", r.name, check=False, quiet=True)
                raise AssertionError(f"{service} not ready:\n{logs.stdout[-3000:]}"
                                     f"{logs.stderr[-3000:]}") from None
        yield running
    finally:
        for r in running.values():
            await asyncio.to_thread(engine.run, "rm", "-f", "-t", "20", r.name, check=False,
                                    quiet=True, timeout=120)
        admin = await asyncpg.connect(postgres_url)
        for database in databases:
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()
        for service in ("casework", "notifications"):
            await delete_queues(broker_url, ServiceQueues(service=namespace + service))


@pytest.mark.timeout(900)
async def test_each_image_answers_readyz_in_production_mode(stack: dict[str, Running]) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        for service, r in stack.items():
            ready = await client.get(f"{r.url}/readyz")
            assert ready.status_code == 200, (service, ready.text)
            assert all(ready.json()["checks"].values()), ready.json()


@pytest.mark.timeout(300)
async def test_tokens_are_checked_against_the_jwks(stack: dict[str, Running],
                                                   operator: Operator) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        officer = operator.auth(["registry_officer"])
        r = await client.get(f"{stack['registry'].url}/companies", headers=officer)
        assert r.status_code == 200, r.text
        r = await client.get(f"{stack['casework'].url}/participants",
                             headers=operator.auth(["case_worker"], municipality_code="0180"))
        assert r.status_code == 200, r.text
        # A development token (HS256) is no good in production.
        r = await client.get(f"{stack['registry'].url}/companies", headers=auth("analyst"))
        assert r.status_code == 401


@pytest.mark.timeout(300)
async def test_an_event_crosses_from_the_registry_image_to_the_notifications_image(
        stack: dict[str, Running], operator: Operator, smtp: SmtpServer) -> None:
    """A company registered with the registry container becomes a receipt that the
    notifications container sends over STARTTLS to the SMTP relay."""
    address = f"smoke-{uuid.uuid4().hex[:8]}@example.se"
    body = {
        "org_number": org_number(), "name": "Röktestet Ekonomisk Förening",
        "legal_form": "ekonomisk_forening", "municipality_code": "1480",
        "industries": ["second_hand"], "training_places": 6, "origin": "founded",
        "contacts": [{"name": "Kim Ek", "role": "manager", "email": address}],
        "workforce": {"as_of": "2026-10-01", "employees_total": 8, "engaged_total": 20,
                      "target_group_engaged": 12},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True}}
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(f"{stack['registry'].url}/companies", json=body,
                              headers=operator.auth(["company_rep"]))
        assert r.status_code == 201, r.text
        company_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while not smtp.to(address):
            assert time.monotonic() < deadline, "no receipt reached the SMTP relay"
            await asyncio.sleep(0.5)
    [message] = smtp.to(address)
    assert "Röktestet Ekonomisk Förening" in message["Subject"]
    assert f"https://samverkan.asf-smoke.example/companies/{company_id}" in text_of(message)
    assert {r.tls for r in smtp.handler.received if r.message is message} == {True}


def test_the_images_run_as_a_non_root_user_on_a_read_only_root_and_are_healthy(
        engine: Any, stack: dict[str, Running]) -> None:
    for service, r in stack.items():
        uid = engine.run("exec", r.name, "id", "-u", quiet=True).stdout.strip()
        assert uid == "10001", service
        write = engine.run("exec", r.name, "sh", "-c", "touch /opt/venv/x || touch /x",
                           check=False, quiet=True)
        assert write.returncode != 0 and "Read-only file system" in write.stderr, service
        if engine.name == "podman":  # the image's own HEALTHCHECK, run once
            health = engine.run("healthcheck", "run", r.name, check=False, quiet=True)
            assert health.returncode == 0, (service, health.stdout, health.stderr)


def test_image_sizes(engine: Any, images: dict[str, str], figure: Any) -> None:
    """The sizes are printed at the end of the run; an image past 450 MB is a regression
    (Debian's python3 base here is about 190 MB, the virtualenv about 100 MB)."""
    for service, tag in images.items():
        size = engine.image_size(tag) / 1e6
        figure(f"image {tag}: {size:.0f} MB")
        assert size < 450, (service, size)
