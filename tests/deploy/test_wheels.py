"""What ships holds no test support: each production package (the services, the kit, the
contracts) is built into a wheel, as an image installs it, and the wheel is opened."""

from __future__ import annotations

import concurrent.futures
import os
import re
import shutil
import subprocess
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FOLDERS = [ROOT / "contracts", ROOT / "kit", *sorted((ROOT / "services").glob("*/"))]
PACKAGES = [tomllib.loads((f / "pyproject.toml").read_text(encoding="utf-8"))["project"]["name"]
            for f in FOLDERS if (f / "pyproject.toml").exists()]

TEST_MODULES = re.compile(r"(^|/)(asf_testing|conftest\.py|testing\.py|tests?/)")
# (aiosmtpd is not here: notifications runs its development mail catcher with it.)
TEST_IMPORTS = re.compile(
    r"^\s*(import|from)\s+(pytest|_pytest|asf_testing|asgi_lifespan|testcontainers)"
    r"\b", re.MULTILINE)
TEST_REQUIREMENTS = re.compile(
    r"^Requires-Dist: (pytest|asf-testing|asgi-lifespan|testcontainers)\b",
    re.MULTILINE | re.IGNORECASE)


def _uv() -> str:
    found = os.environ.get("UV") or shutil.which("uv") or str(Path.home() / ".local/bin/uv")
    assert Path(found).exists(), "uv is needed to build the wheels"
    return found


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("wheels")

    def build(package: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [_uv(), "build", "--package", package, "--wheel", "--out-dir", str(out / package)],
            cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
        )

    with concurrent.futures.ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(PACKAGES, pool.map(build, PACKAGES), strict=True))
    built: dict[str, Path] = {}
    for package, result in results.items():
        assert result.returncode == 0, f"{package}: {result.stderr}"
        [wheel] = (out / package).glob("*.whl")
        built[package] = wheel
    return built


def test_every_service_is_built() -> None:
    assert {"asf-registry", "asf-casework", "asf-notifications", "asf-kit",
            "asf-contracts"} <= set(PACKAGES)


@pytest.mark.parametrize("package", PACKAGES)
def test_a_wheel_holds_no_test_support(wheels: dict[str, Path], package: str) -> None:
    with zipfile.ZipFile(wheels[package]) as wheel:
        names = wheel.namelist()
        assert not [n for n in names if TEST_MODULES.search(n)], names
        importing = [n for n in names if n.endswith(".py")
                     and TEST_IMPORTS.search(wheel.read(n).decode("utf-8"))]
        assert not importing, f"{package} imports test support in {importing}"
        [metadata] = [n for n in names if n.endswith(".dist-info/METADATA")]
        requires = TEST_REQUIREMENTS.findall(wheel.read(metadata).decode("utf-8"))
        assert not requires, f"{package} requires {requires}"


def test_the_check_would_see_test_support(wheels: dict[str, Path]) -> None:
    """The patterns above are not blind: the test support package itself trips them."""
    assert TEST_MODULES.search("asf_testing/plugin.py")
    assert TEST_IMPORTS.search("from __future__ import annotations\nimport pytest\n")
    assert TEST_REQUIREMENTS.search("Requires-Dist: pytest>=8\n")
