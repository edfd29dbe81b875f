"""Put uv into ~/.local/bin when it is not on this machine (the first thing `make` does).

Standard library only: a fresh Debian machine has python3 but may have no pip. With pip,
`pip install --user uv`; without it, the uv wheel from PyPI (its sha256 checked against
PyPI's) is unpacked by hand. Prints where uv is.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

UV_VERSION = "0.13.9"
TARGET = Path.home() / ".local" / "bin" / "uv"


def wheel_for(files: list[dict[str, Any]]) -> dict[str, Any]:
    """The uv wheel for this machine among PyPI's files of the release."""
    machine = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64",
               "arm64": "aarch64"}.get(platform.machine().lower())
    if sys.platform != "linux" or machine is None:
        raise SystemExit(f"no uv wheel chosen for {sys.platform}/{platform.machine()}: "
                         "install uv yourself (https://docs.astral.sh/uv/)")
    libc = "manylinux" if platform.libc_ver()[0] == "glibc" else "musllinux"
    for f in files:
        name = f["filename"]
        if (name.startswith(f"uv-{UV_VERSION}-") and name.endswith(".whl")
                and f"{libc}_" in name and f"_{machine}" in name):
            return f
    raise SystemExit(f"PyPI has no uv {UV_VERSION} wheel for {libc} {machine}")


def from_pypi() -> None:
    """The wheel from PyPI's simple index (JSON form), checked against its sha256."""
    request = urllib.request.Request("https://pypi.org/simple/uv/",
                                     headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=60) as r:
        wheel = wheel_for(json.load(r)["files"])
    with urllib.request.urlopen(wheel["url"], timeout=300) as r:
        data = r.read()
    if hashlib.sha256(data).hexdigest() != wheel["hashes"]["sha256"]:
        raise SystemExit(f"{wheel['filename']}: sha256 differs from PyPI's; not installed")
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        binary = z.read(f"uv-{UV_VERSION}.data/scripts/uv")
    TARGET.parent.mkdir(parents=True, exist_ok=True)
    partial = TARGET.with_suffix(".partial")
    partial.write_bytes(binary)
    partial.chmod(0o755)
    partial.replace(TARGET)


def with_pip() -> bool:
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--user", f"uv=={UV_VERSION}"]
    if subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True,
                      check=False).returncode != 0:
        return False
    for extra in ([], ["--break-system-packages"]):
        if subprocess.run([*pip, *extra], capture_output=True, check=False).returncode == 0:
            return TARGET.exists()
    return False


def main() -> int:
    found = shutil.which("uv")
    if found:
        print(found)
        return 0
    if not TARGET.exists():
        print(f"installing uv {UV_VERSION} into {TARGET.parent}", file=sys.stderr)
        if not with_pip():
            from_pypi()
    if str(TARGET.parent) not in os.environ.get("PATH", "").split(os.pathsep):
        print(f"(uv is in {TARGET.parent}, which is not on your PATH: make finds it there; "
              f"for a shell, `export PATH=$HOME/.local/bin:$PATH`)", file=sys.stderr)
    print(TARGET)
    return 0


if __name__ == "__main__":
    sys.exit(main())
