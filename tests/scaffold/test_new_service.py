"""`make new-service NAME=...` (scaffold/new_service.py): a service scaffolded into a copy of
the repository passes ruff, mypy, its own health test (started as a process, it answers
`/healthz` and `/readyz`) and the deployment files' checks; the copy is thrown away. And the
template stays the pattern of the services that exist."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]


def scaffold() -> ModuleType:
    spec = importlib.util.spec_from_file_location("new_service", ROOT / "scaffold" /
                                                  "new_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.fast
@pytest.mark.parametrize("service", ["registry", "casework", "notifications"])
def test_the_template_dockerfile_is_the_services_own(service: str) -> None:
    """Render the template for a service that exists: its Dockerfile comes out, byte for byte
    (a change to the images' pattern changes the template too)."""
    new = scaffold()
    port = {"registry": 8001, "casework": 8002, "notifications": 8003}[service]
    template = (new.TEMPLATE / "service" / "Dockerfile.tmpl").read_text()
    rendered = new.render(template, new.values(service, port))
    assert rendered == (ROOT / "services" / service / "Dockerfile").read_text()


@pytest.mark.fast
def test_a_name_or_port_that_cannot_be_is_refused_before_anything_is_written() -> None:
    new = scaffold()
    for name, says in [("Billing", "lower-case"), ("b", "lower-case"), ("bill-ing", "lower-case"),
                       ("casework", "exists already"), ("json", "taken"), ("kit", "taken")]:
        with pytest.raises(new.Refused, match=says):
            new.check_name(ROOT, name)
    with pytest.raises(new.Refused, match="in use"):
        new.check_port(ROOT, 8002)
    assert new.next_port(ROOT) not in new.ports_in_use(ROOT)


def copy_of_the_repository(target: Path) -> Path:
    """What git has and does not ignore, as it is in the working tree."""
    listed = subprocess.run(["git", "ls-files", "-co", "--exclude-standard", "-z"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for rel in filter(None, listed):
        if (ROOT / rel).is_file():
            (target / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / rel, target / rel)
    return target


def uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    if not Path(found).exists():
        pytest.skip("uv is not installed")
    return found


@pytest.fixture
def repo(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository, thrown away afterwards (with the virtualenv made in it)."""
    try:
        yield copy_of_the_repository(tmp_path / "repo")
    finally:
        shutil.rmtree(tmp_path / "repo", ignore_errors=True)


@pytest.mark.timeout(900)
def test_a_scaffolded_service_passes_ruff_mypy_and_its_own_health_test(
    repo: Path, postgres_url: str, broker_url: str
) -> None:
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "TEST_DATABASE_URL": postgres_url,
           "TEST_BROKER_URL": broker_url}
    env.pop("VIRTUAL_ENV", None)

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    said = run(sys.executable, str(repo / "scaffold" / "new_service.py"), "billing",
               "--port", "8090")
    assert "services/billing/ on port 8090" in said
    run(uv(), "lock", "--offline")
    run(uv(), "sync", "--frozen", "--offline")
    venv = repo / ".venv" / "bin"
    assert (venv / "billing").exists()  # the service's command, from its pyproject

    run(str(venv / "ruff"), "check", ".")
    run(str(venv / "mypy"), "services/billing/src")
    tests = run(str(venv / "python"), "-m", "pytest", "-q", "-p", "no:schemathesis",
                "-p", "no:cacheprovider", "services/billing/tests",
                "tests/deploy/test_manifests.py",
                "tests/deploy/test_images.py::test_dockerfile_is_multi_stage_slim_non_root_with_"
                "healthcheck[billing]")
    assert " passed" in tests and "skipped" not in tests, tests
    # the new service's tests are in the suite from now on
    collected = run(str(venv / "python"), "-m", "pytest", "--collect-only", "-q",
                    "-p", "no:schemathesis", "-p", "no:cacheprovider")
    assert "services/billing/tests/test_health.py::test_it_starts" in collected
