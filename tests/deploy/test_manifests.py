"""Deployment files, checked offline: Kubernetes manifests against the official schemas
(base and the production overlay, rendered the way kustomize would) and the compose file.
The Dockerfiles and the images built from them: test_images.py."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonpatch
import kubernetes_validate
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
SERVICES = {"registry": 8001, "casework": 8002, "notifications": 8003}
KUBERNETES_VERSION = "1.33.0"


def load_base() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    docs = []
    for rel in kustomization["resources"]:
        docs += [d for d in yaml.safe_load_all((K8S / "base" / rel).read_text()) if d]
    return docs


def render_production() -> list[dict[str, Any]]:
    """What `kustomize build deploy/k8s/overlays/production` gives, for the parts we use."""
    overlay_dir = K8S / "overlays" / "production"
    overlay = yaml.safe_load((overlay_dir / "kustomization.yaml").read_text())
    images = {i["name"]: i for i in overlay["images"]}
    out = []
    for doc in copy.deepcopy(load_base()):
        doc["metadata"]["namespace"] = overlay["namespace"]
        for patch in overlay["patches"]:
            if patch["target"]["kind"] == doc["kind"]:
                ops = yaml.safe_load((overlay_dir / patch["path"]).read_text())
                doc = jsonpatch.apply_patch(doc, ops)
        if doc["kind"] == "Deployment":
            spec = doc["spec"]["template"]["spec"]
            for c in spec["containers"] + spec.get("initContainers", []):
                name, _, _ = c["image"].partition(":")
                if name in images:
                    c["image"] = f"{images[name]['newName']}:{images[name]['newTag']}"
        out.append(doc)
    return out


@pytest.mark.parametrize("rendering", ["base", "production"])
def test_manifests_are_valid_kubernetes(rendering: str) -> None:
    docs = load_base() if rendering == "base" else render_production()
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for service in SERVICES:
        for kind in ("Deployment", "Service", "HorizontalPodAutoscaler",
                     "PodDisruptionBudget"):
            assert (kind, service) in kinds
        assert ("ConfigMap", f"{service}-config") in kinds


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_deployment_probes_resources_and_secrets(service: str) -> None:
    [deployment] = [d for d in load_base()
                    if d["kind"] == "Deployment" and d["metadata"]["name"] == service]
    pod = deployment["spec"]["template"]["spec"]
    [container] = pod["containers"]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["resources"]["requests"]["cpu"]
    assert container["resources"]["requests"]["memory"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["initContainers"][0]["args"] == ["migrate"]
    secret_refs = [e["valueFrom"]["secretKeyRef"]["name"] for e in container["env"]
                   if "secretKeyRef" in e.get("valueFrom", {})]
    assert f"{service}-secrets" in secret_refs
    assert container["ports"][0]["containerPort"] == SERVICES[service]
    assert pod["terminationGracePeriodSeconds"] >= 30  # room for a graceful shutdown


def test_production_overlay_changes_images_and_namespace() -> None:
    docs = render_production()
    deployments = [d for d in docs if d["kind"] == "Deployment"]
    assert all(d["metadata"]["namespace"] == "asf-samverkan" for d in docs)
    assert all(d["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "registry.example.se/") for d in deployments)


def test_compose_has_the_whole_stack() -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "compose.yaml").read_text())
    assert {"postgres", "rabbitmq", "mailcatcher", *SERVICES} <= set(compose["services"])
    assert "management" in compose["services"]["rabbitmq"]["image"]
    for service in SERVICES:
        spec = compose["services"][service]
        assert spec["build"]["dockerfile"] == f"services/{service}/Dockerfile"
        assert spec["environment"]["DATABASE_URL"].endswith(f"/asf_{service}")
