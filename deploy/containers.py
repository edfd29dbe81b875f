"""Container images for this repository, with podman or docker, whichever works here.

    python3 deploy/containers.py images [name ...]   # build every service's image (make images)
    python3 deploy/containers.py base                # make sure the base image is there
    python3 deploy/containers.py setup               # install podman where apt may (CI)
    python3 deploy/containers.py dev-images          # PostgreSQL and RabbitMQ images for tests
    eval "$(python3 deploy/containers.py test-env)"  # tests with testcontainers (make target)
    python3 deploy/containers.py stop-api            # ... and the podman API it started

Standard library only, so it runs before anything is installed. The Dockerfiles are written
for a normal registry (`FROM python:3.11-slim`). Where that image cannot be pulled, a base
of the same name is made from Debian's packages with mmdebstrap and imported, and this says
so: its interpreter is then Debian's python3 (3.11 on bookworm), not the upstream build.
Nothing of this machine's own is written into a committed file: a CA bundle (for a
TLS-inspecting proxy) is passed to the build as a secret, from `SSL_CERT_FILE`.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE_IMAGE = "docker.io/library/python:3.11-slim"
"""What `FROM python:3.11-slim` resolves to, pulled or made here."""
DEBIAN_SUITE = "bookworm"  # python3 is 3.11 there, as in the upstream image
DEV_IMAGES = {
    # image made here where the upstream one cannot be pulled: its Containerfile in deploy/images/
    "localhost/asf-samverkan-dev/postgres:15": "postgres.Containerfile",
    "localhost/asf-samverkan-dev/rabbitmq:3": "rabbitmq.Containerfile",
}
CONF_NAME = "asf-samverkan.conf"


class ContainerError(RuntimeError):
    """Something a person has to act on, said in one paragraph."""


def say(message: str) -> None:
    print(f"[containers] {message}", flush=True)


@dataclass(frozen=True)
class Engine:
    """podman or docker, as found on this machine."""

    name: str
    path: str

    def cmd(self, *args: str) -> list[str]:
        return [self.path, *args]

    def run(self, *args: str, timeout: float | None = None, check: bool = True,
            quiet: bool = False) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(self.cmd(*args), capture_output=quiet, text=True,
                                timeout=timeout, check=False)
        if check and result.returncode != 0:
            detail = (result.stderr or "").strip().splitlines()[-1:] if quiet else []
            raise ContainerError(f"{self.name} {' '.join(args[:2])} failed "
                                 f"(exit {result.returncode}) {' '.join(detail)}".strip())
        return result

    def image_exists(self, image: str) -> bool:
        args = ("image", "exists", image) if self.name == "podman" else ("image", "inspect", image)
        return self.run(*args, check=False, quiet=True, timeout=60).returncode == 0

    def image_size(self, image: str) -> int:
        out = self.run("image", "inspect", "--format", "{{.Size}}", image, quiet=True).stdout
        return int(out.strip())

    def build_options(self) -> list[str]:
        """podman: chroot isolation (works without a cgroup setup) and the docker format, which
        keeps HEALTHCHECK. docker (BuildKit) needs nothing extra."""
        if self.name == "podman":
            return ["--isolation=chroot", "--format=docker", "--network=host"]
        return ["--network=host"]

    def run_options(self) -> list[str]:
        """What every `run` of ours passes: the host network (this machine's PostgreSQL and
        RabbitMQ are on 127.0.0.1)."""
        return ["--network=host"]


def find_engine() -> Engine | None:
    """The first of podman and docker (or `CONTAINER_ENGINE`) that answers `info`."""
    wanted = os.environ.get("CONTAINER_ENGINE")
    for name in [wanted] if wanted else ["podman", "docker"]:
        path = shutil.which(name)
        if path is None:
            continue
        try:
            ok = subprocess.run([path, "info"], capture_output=True, timeout=60,
                                check=False).returncode == 0
        except subprocess.TimeoutExpired:
            ok = False
        if ok:
            return Engine(name, path)
    return None


def require_engine() -> Engine:
    engine = find_engine()
    if engine is None:
        raise ContainerError(
            "No container engine works here: neither `podman info` nor `docker info` "
            "succeeds. Install podman (Debian/Ubuntu: `sudo apt-get install podman runc "
            "mmdebstrap`, or `python3 deploy/containers.py setup` as root) or start Docker.")
    return engine


# --- the base image -----------------------------------------------------------------------


def ca_bundle() -> Path | None:
    """The CA bundle this machine's TLS clients are told to trust, if one is set."""
    for var in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return None


def debian_rootfs_image(engine: Engine, image: str, packages: Sequence[str],
                        hooks: Sequence[str] = (), cmd: str = "bash") -> None:
    """Make `image` from Debian's packages: mmdebstrap into a tar, imported by the engine."""
    if shutil.which("mmdebstrap") is None:
        raise ContainerError(
            f"{image} cannot be pulled and mmdebstrap, which would make it from Debian's "
            "packages, is not installed (`apt-get install mmdebstrap`).")
    mirror = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
    security = os.environ.get("DEBIAN_SECURITY_MIRROR", "http://deb.debian.org/debian-security")
    sources = [f"deb {mirror} {DEBIAN_SUITE} main",
               f"deb {mirror} {DEBIAN_SUITE}-updates main",
               f"deb {security} {DEBIAN_SUITE}-security main"]
    slim = [f"--dpkgopt=path-exclude=/usr/share/{d}/*" for d in ("man", "doc", "info", "locale")]
    slim.append("--dpkgopt=path-include=/usr/share/doc/*/copyright")
    tar = ROOT / "var" / "containers" / f"{image.replace('/', '_').replace(':', '_')}.tar"
    tar.parent.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    try:
        result = subprocess.run(
            ["mmdebstrap", "--variant=apt", "--quiet", f"--include={','.join(packages)}",
             *slim, *[f"--customize-hook={h}" for h in hooks], DEBIAN_SUITE, str(tar),
             *sources], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            raise ContainerError(f"mmdebstrap failed: {result.stderr.strip()[-2000:]}")
        engine.run("import", "--change", f'CMD ["{cmd}"]', "--change", "ENV LANG=C.UTF-8",
                   "--change", f"LABEL {RECIPE_LABEL}={recipe(packages, hooks)}",
                   str(tar), image, quiet=True)
    finally:
        tar.unlink(missing_ok=True)
    say(f"made {image} from Debian {DEBIAN_SUITE} in {time.monotonic() - started:.0f} s")


BASE_PACKAGES = [
    # What the upstream image installs beside Python: CA certificates, netbase and the time
    # zone database (zoneinfo reads it: casework's working days, the daily digest).
    "python3", "python-is-python3", "python3-pip", "ca-certificates", "netbase", "tzdata"]
BASE_HOOKS = [
    # pip may install system-wide, as in the upstream image (the Dockerfiles install uv so).
    'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED']
RECIPE_LABEL = "org.asf-samverkan.debian-recipe"


def recipe(packages: Sequence[str], hooks: Sequence[str]) -> str:
    """A short digest of how a local image is made, stored as its label."""
    text = "\n".join([DEBIAN_SUITE, *packages, *hooks])
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def made_here_from_another_recipe(engine: Engine, image: str, wanted: str) -> bool:
    """True for an image this script made from an older recipe (a pulled one has no label)."""
    out = engine.run("image", "inspect", "--format",
                     f'{{{{index .Config.Labels "{RECIPE_LABEL}"}}}}', image, check=False,
                     quiet=True).stdout.strip()
    return out not in ("", "<no value>", wanted)


def ensure_base_image(engine: Engine) -> None:
    """`python:3.11-slim` as the Dockerfiles name it: already here, pulled, or made locally
    (and made again when the recipe below changed since)."""
    if engine.image_exists(BASE_IMAGE):
        if not made_here_from_another_recipe(engine, BASE_IMAGE,
                                             recipe(BASE_PACKAGES, BASE_HOOKS)):
            return
        say(f"{BASE_IMAGE} was made here from an older recipe: making it again")
        debian_rootfs_image(engine, BASE_IMAGE, BASE_PACKAGES, BASE_HOOKS, cmd="python3")
        return
    say(f"pulling {BASE_IMAGE}")
    try:
        pulled = engine.run("pull", BASE_IMAGE, check=False, quiet=True, timeout=300)
    except subprocess.TimeoutExpired:
        pulled = None
    if pulled is not None and pulled.returncode == 0:
        return
    say(f"{BASE_IMAGE} cannot be pulled here (no registry reachable), so a local one is "
        f"made from Debian's {DEBIAN_SUITE} packages with mmdebstrap (about a minute, once). "
        "Its interpreter is Debian's python3 3.11, not the upstream image's build.")
    debian_rootfs_image(engine, BASE_IMAGE, BASE_PACKAGES, BASE_HOOKS, cmd="python3")


FRESH_DEBIAN = "localhost/asf-samverkan-test/fresh-debian:bookworm"
"""A bare Debian with nothing but git, make and python3: a newcomer's machine, for the test
that runs `make run` and `make test` from nothing."""


def ensure_fresh_debian_image(engine: Engine) -> str:
    """The fresh machine's image: made once (pulled Debian, or mmdebstrap), then reused."""
    if engine.image_exists(FRESH_DEBIAN):
        return FRESH_DEBIAN
    packages = ["git", "make", "python3", "ca-certificates"]
    pulled = engine.run("pull", f"docker.io/library/debian:{DEBIAN_SUITE}", check=False,
                        quiet=True, timeout=300)
    if pulled.returncode == 0:
        folder = ROOT / "var" / "containers" / "fresh-debian"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "Containerfile").write_text(
            f"FROM docker.io/library/debian:{DEBIAN_SUITE}\n"
            "RUN apt-get update && apt-get install -y --no-install-recommends "
            f"{' '.join(packages)} && rm -rf /var/lib/apt/lists/*\n")
        build(engine, folder / "Containerfile", FRESH_DEBIAN, context=folder)
    else:
        say(f"debian:{DEBIAN_SUITE} cannot be pulled here: making {FRESH_DEBIAN} with mmdebstrap")
        debian_rootfs_image(engine, FRESH_DEBIAN, packages)
    return FRESH_DEBIAN


# --- running containers (podman's setup on kernels like this one) -------------------------


def conf_dropin() -> Path:
    if os.geteuid() == 0:
        return Path("/etc/containers/containers.conf.d") / CONF_NAME
    return Path.home() / ".config" / "containers" / "containers.conf.d" / CONF_NAME


def _runs(engine: Engine) -> subprocess.CompletedProcess[str]:
    return engine.run("run", "--rm", *engine.run_options(), BASE_IMAGE, "true", check=False,
                      quiet=True, timeout=120)


def ensure_runtime(engine: Engine) -> None:
    """Make sure a container can start. Where podman's defaults fail (crun on a cgroup setup
    it cannot use; rlimits it may not raise), write a containers.conf drop-in that uses runc
    and this machine's own limits, and say so."""
    ensure_base_image(engine)
    first = _runs(engine)
    if first.returncode == 0:
        return
    if engine.name != "podman":
        raise ContainerError(f"{engine.name} cannot start a container: {first.stderr.strip()}")
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 65536 if nofile == resource.RLIM_INFINITY else min(nofile, 1048576)
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    dropin = conf_dropin()
    dropin.parent.mkdir(parents=True, exist_ok=True)
    runtime = '[engine]\nruntime = "runc"\n' if shutil.which("runc") else ""
    dropin.write_text(
        "# Written by ASF Samverkan's deploy/containers.py: podman's defaults could not start a\n"
        f"# container here ({first.stderr.strip().splitlines()[-1][:200]}).\n"
        f'[containers]\ndefault_ulimits = ["nofile={nofile}:{nofile}", '
        f'"nproc={nproc}:{nproc}"]\n{runtime}')
    say(f"podman could not start a container with its defaults; wrote {dropin} "
        f"(runc, nofile={nofile}, nproc={nproc})")
    second = _runs(engine)
    if second.returncode != 0:
        raise ContainerError(f"podman still cannot start a container: {second.stderr.strip()}")


# --- the service images -------------------------------------------------------------------


@dataclass(frozen=True)
class ServiceImage:
    name: str
    version: str
    dockerfile: Path

    @property
    def tag(self) -> str:
        return f"asf-samverkan/{self.name}:{self.version}"


def service_images() -> list[ServiceImage]:
    """Every service with a Dockerfile (a new one, such as the web app, is found as it lands)."""
    found = []
    for dockerfile in sorted((ROOT / "services").glob("*/Dockerfile")):
        project = tomllib.loads((dockerfile.parent / "pyproject.toml").read_text())
        found.append(ServiceImage(dockerfile.parent.name, project["project"]["version"],
                                  dockerfile))
    return found


def build(engine: Engine, dockerfile: Path, tag: str, context: Path = ROOT) -> float:
    """Build one image; the seconds it took."""
    secrets: list[str] = []
    bundle = ca_bundle()
    if bundle is not None:
        secrets = ["--secret", f"id=build_ca,src={bundle}"]
    started = time.monotonic()
    engine.run("build", *engine.build_options(), *secrets, "-f", str(dockerfile), "-t", tag,
               str(context))
    return time.monotonic() - started


def build_service_images(engine: Engine, only: Sequence[str] = ()) -> list[dict[str, object]]:
    ensure_base_image(engine)
    images = [i for i in service_images() if not only or i.name in only]
    missing = set(only) - {i.name for i in images}
    if missing:
        raise ContainerError(f"no services/<name>/Dockerfile for {', '.join(sorted(missing))}")
    report = []
    for image in images:
        say(f"building {image.tag} with {engine.name}")
        seconds = build(engine, image.dockerfile, image.tag)
        size = engine.image_size(image.tag)
        report.append({"image": image.tag, "seconds": round(seconds, 1),
                       "size_mb": round(size / 1e6, 1)})
        say(f"{image.tag}: built in {seconds:.0f} s, {size / 1e6:.0f} MB")
    return report


def compose_image(service: str) -> str:
    """The image deploy/compose.yaml gives a service, fully named (read without a YAML
    library): the one source of the PostgreSQL, RabbitMQ and mail catcher images."""
    text = (ROOT / "deploy" / "compose.yaml").read_text()
    found = re.search(rf"^  {service}:\n(?:    .*\n)*?    image: (\S+)", text, re.MULTILINE)
    if found is None:
        raise ContainerError(f"deploy/compose.yaml has no image for {service}")
    image = found.group(1)
    first = image.split("/")[0]
    if "/" not in image:
        return f"docker.io/library/{image}"
    return image if "." in first or ":" in first or first == "localhost" else f"docker.io/{image}"


def ensure_dev_images(engine: Engine) -> dict[str, str]:
    """PostgreSQL and RabbitMQ images for the tests' testcontainers path: upstream where it can
    be pulled, else made here from Debian's packages. Returns kind -> image."""
    upstream = {"postgres": compose_image("postgres"), "rabbitmq": compose_image("rabbitmq")}
    chosen = {}
    for kind, image in upstream.items():
        if engine.image_exists(image) or engine.run("pull", image, check=False, quiet=True,
                                                    timeout=300).returncode == 0:
            chosen[kind] = image
            continue
        local = next(i for i in DEV_IMAGES if f"/{kind}:" in i)
        if not engine.image_exists(local):
            ensure_base_image(engine)
            say(f"{image} cannot be pulled here; building {local} from Debian's packages")
            build(engine, ROOT / "deploy" / "images" / DEV_IMAGES[local], local,
                  context=ROOT / "deploy" / "images")
        chosen[kind] = local
    return chosen


API_SOCKET = ROOT / "var" / "containers" / "podman.sock"


def docker_api(engine: Engine) -> str:
    """A Docker API socket for testcontainers: docker's own, or podman's API service, started
    here when none answers (`stop_docker_api` ends it)."""
    if engine.name == "docker":
        return os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    url = f"unix://{API_SOCKET}"
    probe = [engine.path, "--url", url, "info"]
    if subprocess.run(probe, capture_output=True, check=False, timeout=60).returncode == 0:
        return url
    API_SOCKET.parent.mkdir(parents=True, exist_ok=True)
    API_SOCKET.unlink(missing_ok=True)
    with (API_SOCKET.parent / "podman-service.log").open("ab") as log:
        service = subprocess.Popen([engine.path, "system", "service", "--time=0", url],
                                   stdout=log, stderr=log, start_new_session=True)
    API_SOCKET.with_suffix(".pid").write_text(str(service.pid))
    deadline = time.monotonic() + 30
    while subprocess.run(probe, capture_output=True, check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise ContainerError(f"podman's API service did not answer on {url}")
        time.sleep(0.5)
    say(f"started podman's Docker-compatible API on {url} (pid {service.pid})")
    return url


def stop_docker_api() -> None:
    """End the podman API service `docker_api` started, if it did."""
    pid_file = API_SOCKET.with_suffix(".pid")
    if pid_file.exists():
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        pid_file.unlink()


def test_env(engine: Engine) -> dict[str, str]:
    """The environment under which the tests start their own PostgreSQL and RabbitMQ with
    testcontainers, ignoring this machine's (`make test-containers`)."""
    ensure_runtime(engine)
    images = ensure_dev_images(engine)
    return {"TEST_USE_CONTAINERS": "1", "DOCKER_HOST": docker_api(engine),
            "TESTCONTAINERS_RYUK_DISABLED": "true",  # its image cannot be pulled everywhere
            # The engine runs on this machine: its published ports are here, even where a
            # /.dockerenv makes testcontainers guess that the tests run in a container.
            "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
            "TEST_POSTGRES_IMAGE": images["postgres"], "TEST_RABBITMQ_IMAGE": images["rabbitmq"]}


# --- installing podman (CI, fresh machines) -----------------------------------------------


def apt_prefix() -> list[str] | None:
    """How to run apt-get here: as root, or with passwordless sudo; None when neither."""
    if shutil.which("apt-get") is None:
        return None
    if os.geteuid() == 0:
        return []
    sudo = shutil.which("sudo")
    if sudo and subprocess.run([sudo, "-n", "true"], capture_output=True,
                               check=False).returncode == 0:
        return [sudo, "-n"]
    return None


def install_podman() -> Engine:
    engine = find_engine()
    if engine is not None:
        return engine
    prefix = apt_prefix()
    if prefix is None:
        raise ContainerError("No container engine here and apt-get may not be used (not root, "
                             "no passwordless sudo): install podman, runc and mmdebstrap.")
    say("installing podman, runc and mmdebstrap from the distribution's packages")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = [*prefix, "apt-get", "-o", "DPkg::Lock::Timeout=600", "-q"]
    started = time.monotonic()
    subprocess.run([*apt, "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run([*apt, "install", "-y", "--no-install-recommends", "podman", "runc",
                    "mmdebstrap", "uidmap", "slirp4netns", "netavark", "aardvark-dns",
                    "catatonit", "fuse-overlayfs", "iptables"],
                   check=True, env=env, stdout=subprocess.DEVNULL)
    say(f"installed podman in {time.monotonic() - started:.0f} s")
    return require_engine()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    images = sub.add_parser("images", help="build every service's image")
    images.add_argument("names", nargs="*", help="only these services")
    images.add_argument("--json", action="store_true", help="print the figures as JSON")
    sub.add_parser("base", help="make sure the base image is here (pull or make it)")
    sub.add_parser("setup", help="install podman where apt may, and make containers start")
    sub.add_parser("dev-images", help="PostgreSQL and RabbitMQ images for the tests")
    sub.add_parser("test-env", help="print `export ...` lines: the tests in containers")
    sub.add_parser("stop-api", help="stop the podman API service test-env started")
    args = parser.parse_args(argv)
    try:
        if args.command == "setup":
            engine = install_podman()
            ensure_runtime(engine)
            say(f"{engine.name} is ready")
        elif args.command == "base":
            ensure_base_image(require_engine())
        elif args.command == "dev-images":
            print(json.dumps(ensure_dev_images(require_engine())))
        elif args.command == "stop-api":
            stop_docker_api()
        elif args.command == "test-env":
            for key, value in test_env(require_engine()).items():
                print(f"export {key}={shlex.quote(value)}")
        else:
            report = build_service_images(require_engine(), args.names)
            if args.json:
                print(json.dumps(report))
    except ContainerError as error:
        print(f"[containers] {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
