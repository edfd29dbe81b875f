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
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import kubernetes_validate
import pytest
import yaml

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


def without_comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if not line.lstrip().startswith("#")]


@pytest.mark.fast
def test_the_template_kubernetes_unit_is_the_registrys_own() -> None:
    """Rendered for the registry, the unit template gives the registry's unit but for
    comments (the registry's own drain time is explained in its own words)."""
    new = scaffold()
    source = new.TEMPLATE / "deploy" / "k8s"
    templates = sorted(source.rglob("*.tmpl"))
    unit = ROOT / "deploy" / "k8s" / "registry"
    assert {str(t.relative_to(source)).removesuffix(".tmpl") for t in templates} == {
        str(f.relative_to(unit)) for f in unit.rglob("*") if f.is_file()}
    for template in templates:
        rendered = new.render(template.read_text(), new.values("registry", 8001))
        own = (unit / str(template.relative_to(source)).removesuffix(".tmpl")).read_text()
        assert without_comments(rendered) == without_comments(own), template.name


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


@pytest.fixture(scope="module")
def scaffolded(tmp_path_factory: pytest.TempPathFactory, postgres_url: str, broker_url: str
               ) -> Iterator[tuple[Path, Callable[..., str]]]:
    """A copy of the repository with `billing` scaffolded and installed in a virtualenv of its
    own; thrown away afterwards."""
    repo = copy_of_the_repository(tmp_path_factory.mktemp("scaffold") / "repo")
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "TEST_DATABASE_URL": postgres_url,
           "TEST_BROKER_URL": broker_url}
    env.pop("VIRTUAL_ENV", None)

    def run(*args: str) -> str:
        done = subprocess.run(args, cwd=repo, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, f"{' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    try:
        said = run(sys.executable, str(repo / "scaffold" / "new_service.py"), "billing",
                   "--port", "8090")
        assert "services/billing/ on port 8090" in said
        # Offline when uv's cache already knows the index (a machine that has locked before);
        # on a fresh machine `uv sync --frozen` fetched wheels but no index pages, so lock
        # against the registry (the workspace's pins stay: only billing is added).
        try:
            run(uv(), "lock", "--offline")
        except AssertionError:
            run(uv(), "lock")
        run(uv(), "sync", "--frozen", "--offline")
        yield repo, run
    finally:
        shutil.rmtree(repo, ignore_errors=True)


@pytest.mark.timeout(900)
def test_a_scaffolded_service_passes_ruff_mypy_and_its_own_health_test(
    scaffolded: tuple[Path, Callable[..., str]],
) -> None:
    repo, run = scaffolded
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


KUBECTL = shutil.which("kubectl")


@pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not installed")
def test_a_scaffolded_service_has_its_own_kubernetes_unit_and_network_policies(
    scaffolded: tuple[Path, Callable[..., str]],
) -> None:
    """Rendered by `kubectl kustomize` and valid Kubernetes 1.33: the unit holds billing and
    nothing else; the platform lets it reach its database and the broker, and nothing more."""
    _, run = scaffolded
    assert KUBECTL is not None
    for path in ("billing/base", "billing/production", "platform"):
        docs = [d for d in yaml.safe_load_all(run(KUBECTL, "kustomize", f"deploy/k8s/{path}"))
                if d]
        for doc in docs:
            kubernetes_validate.validate(doc, "1.33.0", strict=True)
        if path == "billing/production":
            assert {d["kind"] for d in docs} == {"Deployment", "Service", "ConfigMap",
                                                 "HorizontalPodAutoscaler",
                                                 "PodDisruptionBudget"}
            for doc in docs:
                assert doc["metadata"]["namespace"] == "asf-samverkan"
                assert doc["metadata"]["labels"]["app.kubernetes.io/name"] == "billing"
            [deployment] = [d for d in docs if d["kind"] == "Deployment"]
            [container] = deployment["spec"]["template"]["spec"]["containers"]
            assert container["image"].endswith("/asf-samverkan/billing:0.1.0")
            assert container["ports"] == [{"name": "http", "containerPort": 8090}]
        if path == "platform":
            policies = {d["metadata"]["name"]: d["spec"] for d in docs
                        if d["kind"] == "NetworkPolicy"}
            egress = policies["billing"]["egress"]
            assert [t["to"][0]["podSelector"]["matchLabels"] for t in egress] == [
                {"asf-samverkan/database": "billing"}, {"app.kubernetes.io/name": "rabbitmq"}]
            database = policies["billing-database"]["ingress"][0]["from"]
            assert database == [{"podSelector": {"matchLabels": {
                "app.kubernetes.io/name": "billing"}}}]
            broker = policies["rabbitmq"]["ingress"][0]["from"][0]["podSelector"]
            assert "billing" in broker["matchExpressions"][0]["values"]
