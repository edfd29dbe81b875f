"""Deployment files, checked offline: each service's Kubernetes unit and the shared platform
rendered by `kubectl kustomize` and validated against the official schemas; a unit holds
its own service and nothing of another; rollouts that lose nothing; production settings;
the compose file. The Dockerfiles and the images built from them: test_images.py."""

from __future__ import annotations

import inspect
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
APIS = {"registry": 8001, "casework": 8002, "notifications": 8003}
UNITS = {**APIS, "web": 8000}
KUBERNETES_VERSION = "1.33.0"
NAMESPACE = "asf-samverkan"
KUBECTL = shutil.which("kubectl")

needs_kubectl = pytest.mark.skipif(KUBECTL is None, reason="kubectl (with kustomize) is not "
                                   "installed; the units are rendered by `kubectl kustomize`")


@cache
def render(path: str) -> tuple[dict[str, Any], ...]:
    """What `kubectl kustomize deploy/k8s/<path>` gives, as documents."""
    assert KUBECTL is not None
    result = subprocess.run([KUBECTL, "kustomize", str(K8S / path)], capture_output=True,
                            text=True, check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return tuple(d for d in yaml.safe_load_all(result.stdout) if d)


def of_kind(docs: tuple[dict[str, Any], ...], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def deployment(unit: str, rendering: str = "production") -> dict[str, Any]:
    [d] = of_kind(render(f"{unit}/{rendering}"), "Deployment")
    return d


def config(unit: str) -> dict[str, str]:
    [cm] = of_kind(render(f"{unit}/production"), "ConfigMap")
    data: dict[str, str] = cm["data"]
    return data


def service_version(unit: str) -> str | None:
    pyproject = ROOT / "services" / unit / "pyproject.toml"
    if not pyproject.exists():
        return None
    version: str = tomllib.loads(pyproject.read_text())["project"]["version"]
    return version


# --- every unit renders and validates on its own ---------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("path", [f"{u}/{r}" for u in UNITS for r in ("base", "production")]
                         + ["platform"])
def test_renders_with_kustomize_and_validates(path: str) -> None:
    docs = render(path)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_a_unit_holds_its_own_service_and_nothing_of_another(unit: str) -> None:
    docs = render(f"{unit}/production")
    kinds = {d["kind"] for d in docs}
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "PodDisruptionBudget",
            "ConfigMap"} <= kinds
    assert "Namespace" not in kinds and "NetworkPolicy" not in kinds, "shared: platform/"
    others = set(UNITS) - {unit}
    for doc in docs:
        meta = doc["metadata"]
        assert meta["namespace"] == NAMESPACE
        assert meta["labels"]["app.kubernetes.io/name"] == unit, (doc["kind"], meta["name"])
        assert meta["name"] == unit or meta["name"].startswith(f"{unit}-")
    pod = deployment(unit)["spec"]["template"]["spec"]
    for container in pod["containers"] + pod.get("initContainers", []):
        assert container["image"].rsplit("/", 1)[-1].split(":")[0] == unit
        for ref in container.get("envFrom", []):
            assert ref["configMapRef"]["name"].startswith(f"{unit}-config")
        for env in container.get("env", []):
            source = env.get("valueFrom", {})
            for key in ("secretKeyRef", "configMapKeyRef"):
                if key in source:
                    assert source[key]["name"].split("-")[0] not in others, env
    # The web app reaches the APIs by their Services: the one place other names appear.
    if unit != "web":
        text = yaml.safe_dump_all(docs)
        for other in others:
            assert not re.search(rf"\b{other}-(config|secrets)\b", text)


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_image_tag_is_the_services_own_version(unit: str) -> None:
    version = service_version(unit)
    if version is None:
        pytest.skip(f"services/{unit}/pyproject.toml does not exist yet")
    for rendering in ("base", "production"):
        pod = deployment(unit, rendering)["spec"]["template"]["spec"]
        for container in pod["containers"] + pod.get("initContainers", []):
            assert container["image"].endswith(f"/{unit}:{version}"), container["image"]
    assert deployment(unit)["spec"]["template"]["spec"]["containers"][0]["image"] \
        .startswith("images.example.se/")


# --- rollouts lose nothing -------------------------------------------------------------------


def _default(obj: Any, *names: str) -> float:
    params = inspect.signature(obj).parameters
    [value] = [params[n].default for n in names if n in params]
    return float(value)


def drain_seconds(unit: str) -> float:
    """How long the service may take to stop after SIGTERM, read from the code: uvicorn's
    graceful HTTP shutdown, then the lifespan's longest stop (relay flush, SMTP sends)."""
    own_cli = ROOT / "services" / unit / "src" / unit / "cli.py"
    cli = own_cli.read_text() if own_cli.exists() else ""
    if "timeout_graceful_shutdown" not in cli:  # the kit's `serve`
        cli = (ROOT / "kit" / "src" / "asf_kit" / "cli.py").read_text()
    http = float(re.search(r"timeout_graceful_shutdown=(\d+)", cli).group(1))  # type: ignore[union-attr]
    if unit == "web":
        return http
    if unit == "notifications":
        from notifications.sender import Sweeper

        return http + _default(Sweeper.stop, "grace_seconds", "grace")
    from asf_kit.outbox import OutboxRelay
    from asf_kit.worker import Worker

    relay = _default(OutboxRelay.stop, "grace", "grace_seconds")
    # Its sweeps (and casework's stream listener) stop one after the other, each finishing
    # the round in progress, before the relay flushes.
    app = (ROOT / "services" / unit / "src" / unit / "app.py").read_text()
    workers = len(re.findall(r"\b\w*Sweep\((?!Worker\))", app)) + app.count("Broadcaster(")
    return http + workers * _default(Worker.stop, "grace") + relay


def pre_stop_seconds(container: dict[str, Any]) -> float:
    hook = container["lifecycle"]["preStop"]
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    command = " ".join(hook["exec"]["command"])
    return float(re.search(r"sleep\((\d+(?:\.\d+)?)\)", command).group(1))  # type: ignore[union-attr]


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_rollout_loses_nothing(unit: str) -> None:
    d = deployment(unit)
    assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert d["spec"]["replicas"] >= 2
    pod = d["spec"]["template"]["spec"]
    [container] = pod["containers"]
    pause = pre_stop_seconds(container)
    # Endpoints leave kube-proxy and the ingress within a few seconds of the pod's deletion.
    assert pause >= 5
    # Ten seconds of margin for the relay's final flush and the consumers' stop.
    assert pod["terminationGracePeriodSeconds"] >= pause + drain_seconds(unit) + 10
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    [pdb] = of_kind(render(f"{unit}/production"), "PodDisruptionBudget")
    assert pdb["spec"]["minAvailable"] >= 1


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_pod_is_locked_down_and_secrets_are_only_referenced(unit: str) -> None:
    pod = deployment(unit)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    for container in pod["containers"] + pod.get("initContainers", []):
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"]["cpu"]
        assert container["resources"]["limits"]["memory"]
    [container] = pod["containers"]
    assert container["ports"][0]["containerPort"] == UNITS[unit]
    refs = {e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
            if "secretKeyRef" in e.get("valueFrom", {})}
    assert refs == {f"{unit}-secrets"}
    assert not of_kind(render(f"{unit}/production"), "Secret"), "secrets are never checked in"
    for key, value in config(unit).items():
        assert not re.search(r"SECRET|PASSWORD|DATA_KEY$|DATABASE_URL|BROKER_URL", key), \
            f"{key} belongs in {unit}-secrets"
        assert "guest" not in value and "change-me" not in value


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_each_unit_migrates_its_own_database(unit: str) -> None:
    pod = deployment(unit)["spec"]["template"]["spec"]
    if unit == "web":
        assert not pod.get("initContainers"), "the web app has no database"
        return
    [init] = pod["initContainers"]
    assert init["args"] == ["migrate"]
    assert init["image"] == pod["containers"][0]["image"], "the migration of this release"
    [env] = [e for e in init["env"] if e["name"] == "DATABASE_URL"]
    assert env["valueFrom"]["secretKeyRef"]["name"] == f"{unit}-secrets"


# --- production settings ---------------------------------------------------------------------


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_production_settings(unit: str) -> None:
    cfg = config(unit)
    assert cfg["APP_ENV"] == "production"
    assert cfg["LOG_FORMAT"] == "json"
    if unit == "web":
        assert cfg["OIDC_ISSUER"].startswith("https://") and cfg["OIDC_CLIENT_ID"]
        assert {cfg[f"{api.upper()}_URL"] for api in APIS} == {f"http://{a}" for a in APIS}
        return
    # JWKS with issuer and audience; no HS256 secret in production.
    assert cfg["JWT_JWKS_URL"].startswith("https://")
    assert cfg["JWT_ISSUER"] and cfg["JWT_AUDIENCE"]
    assert "JWT_SECRET" not in cfg and "JWT_ALLOW_HS256" not in cfg
    if unit == "notifications":
        assert cfg["SMTP_HOST"] and cfg["SMTP_TLS"] in ("starttls", "tls")


# --- the platform: namespace, broker topology, network policies ------------------------------


def policies() -> dict[str, dict[str, Any]]:
    return {p["metadata"]["name"]: p["spec"] for p in of_kind(render("platform"), "NetworkPolicy")}


def _peers(rules: list[dict[str, Any]]) -> set[tuple[str, str]]:
    found = set()
    for rule in rules:
        for peer in rule.get("to", []) + rule.get("from", []):
            for k, v in peer.get("podSelector", {}).get("matchLabels", {}).items():
                found.add((k, v))
            for k, v in peer.get("namespaceSelector", {}).get("matchLabels", {}).items():
                found.add((f"namespace:{k}", v))
    return found


@needs_kubectl
def test_platform_denies_by_default_and_ships_the_broker_topology() -> None:
    docs = render("platform")
    [ns] = of_kind(docs, "Namespace")
    assert ns["metadata"]["name"] == NAMESPACE
    deny = policies()["default-deny"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    [definitions] = [c for c in of_kind(docs, "ConfigMap")
                     if c["metadata"]["name"] == "rabbitmq-definitions"]
    shipped = (ROOT / "deploy" / "rabbitmq" / "definitions.json").read_text()
    assert definitions["data"]["definitions.json"] == shipped


@needs_kubectl
@pytest.mark.parametrize("unit", sorted(UNITS))
def test_network_policy_lets_a_service_reach_only_what_it_needs(unit: str) -> None:
    spec = policies()[unit]
    assert spec["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": unit}
    egress = _peers(spec["egress"])
    if unit == "web":
        assert egress == {("app.kubernetes.io/name", a) for a in APIS}
        assert ("namespace:kubernetes.io/metadata.name", "ingress-nginx") in \
            _peers(spec["ingress"])
    else:
        assert egress == {("asf-samverkan/database", unit), ("app.kubernetes.io/name", "rabbitmq")}
        assert _peers(spec["ingress"]) == {("app.kubernetes.io/name", "web"),
                                           ("namespace:kubernetes.io/metadata.name", "monitoring")}
        database = policies()[f"{unit}-database"]
        assert _peers(database["ingress"]) == {("app.kubernetes.io/name", unit)}
    # Outside the cluster: HTTPS (identity provider) for all, SMTP for notifications only.
    outside = {p["port"] for rule in spec["egress"] if any("ipBlock" in t for t in rule["to"])
               for p in rule["ports"]}
    assert outside == ({587, 465} if unit == "notifications" else set())


@needs_kubectl
def test_nothing_publishes_the_broker_ui_or_a_mail_catcher() -> None:
    for unit in UNITS:
        for svc in of_kind(render(f"{unit}/production"), "Service"):
            assert svc["spec"].get("type", "ClusterIP") == "ClusterIP"
            assert {p["port"] for p in svc["spec"]["ports"]} == {80}
    ingresses = [i for u in UNITS for i in of_kind(render(f"{u}/production"), "Ingress")]
    assert [i["metadata"]["name"] for i in ingresses] == ["web"], "only the web app is public"


# --- compose ---------------------------------------------------------------------------------


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    return data


def test_compose_has_the_whole_stack() -> None:
    services = compose()["services"]
    assert {"postgres", "rabbitmq", "mailcatcher", *UNITS} <= set(services)
    for service in APIS:
        spec = services[service]
        assert spec["build"]["dockerfile"] == f"services/{service}/Dockerfile"
        assert f"/asf_{service}" in spec["environment"]["DATABASE_URL"]
    web = services["web"]["environment"]
    assert web["REGISTRY_URL"] == "http://registry:8001"
    assert web["CASEWORK_URL"] == "http://casework:8002"
    assert web["NOTIFICATIONS_URL"] == "http://notifications:8003"


SECRET_SETTING = re.compile(r"SECRET|PASSWORD|_KEY$|_PASS$|DATABASE_URL|BROKER_URL")


def test_compose_writes_no_secret_and_requires_each_one() -> None:
    """Every secret comes from `${VAR:?}`: compose refuses to start without it."""
    checked = set()
    for name, spec in compose()["services"].items():
        for key, value in spec.get("environment", {}).items():
            if SECRET_SETTING.search(key):
                assert re.search(r"\$\{\w+:\?[^}]*\}", str(value)), f"{name}: {key} = {value}"
                assert not re.search(r"\$\{\w+:-", str(value)), f"{name}: {key} has a default"
                checked.add(key)
    assert {"JWT_SECRET", "CASEWORK_DATA_KEY", "POSTGRES_PASSWORD", "RABBITMQ_DEFAULT_PASS",
            "SESSION_SECRET", "DATABASE_URL", "BROKER_URL"} <= checked
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    assert "POSTGRES_HOST_AUTH_METHOD" not in text and "guest:guest" not in text


def test_compose_publishes_tools_on_loopback_only() -> None:
    for name, spec in compose()["services"].items():
        for port in spec.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"
    assert "management" in compose()["services"]["rabbitmq"]["image"]
