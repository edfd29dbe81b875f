"""The container engine and the images, for the tests that need them; their figures (build
times, sizes, the fresh machine's minutes) are printed at the end of the run."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
FIGURES: list[str] = []


def deploy_module(name: str) -> ModuleType:
    """A script of `deploy/` (they are not a package), imported once."""
    if name not in sys.modules:
        sys.path.insert(0, str(ROOT / "deploy"))
        spec = importlib.util.spec_from_file_location(name, ROOT / "deploy" / f"{name}.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture(scope="session")
def figure() -> Any:
    """Record a measured figure for the end of the run (and the CI log)."""
    return FIGURES.append


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if FIGURES:
        terminalreporter.section("deployment figures")
        for line in FIGURES:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def containers() -> ModuleType:
    """`deploy/containers.py`."""
    return deploy_module("containers")


@pytest.fixture(scope="session")
def engine() -> Any:
    """podman or docker, able to start a container here; the test is skipped without one."""
    containers = deploy_module("containers")
    found = containers.find_engine()
    if found is None:
        pytest.skip("no container engine: neither `podman info` nor `docker info` works here "
                    "(`python3 deploy/containers.py setup` installs podman where apt may)")
    containers.ensure_runtime(found)
    return found


@pytest.fixture(scope="session")
def images(engine: Any, figure: Any) -> Iterator[dict[str, str]]:
    """Every service's image, built as `make images` builds it: service -> tag."""
    containers = deploy_module("containers")
    report = containers.build_service_images(engine)
    for row in report:
        figure(f"image {row['image']}: built in {row['seconds']} s, {row['size_mb']} MB")
    yield {i.name: i.tag for i in containers.service_images()}
