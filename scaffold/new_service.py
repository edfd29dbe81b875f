"""`make new-service NAME=<name> [PORT=<port>]`: a new service in the one shape, so that a
fourth one is not copied by hand.

It renders `scaffold/template/` (files ending `.tmpl`; `{{ name }}`, `{{ Name }}` and
`{{ port }}` in their text and paths) into the repository and enters the service where the
repository lists its services:

- `services/<name>/`: pyproject (a workspace member), Dockerfile (the pattern of the others),
  `migrations/001_<name>.sql`, `src/<name>/` (domain, store, service, api, handlers, app,
  cli, settings) and `tests/test_health.py` (it starts as a process and answers);
- the root `pyproject.toml`: the root's dependencies and sources, ruff's first-party names,
  mypy's paths and pytest's test paths;
- `deploy/compose.yaml`, and Kubernetes in the layout the repository has (`deploy/k8s/`: a
  unit per service with its NetworkPolicies in `platform/`, or the one base and overlay).

Then `uv lock` and `uv sync` (the make target runs both). What it leaves to whoever fills
the service in is printed at the end.

    uv run python scaffold/new_service.py billing --port 8004 [--root DIR]
"""

from __future__ import annotations

import argparse
import keyword
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).resolve().parent / "template"
NAME = re.compile(r"^[a-z][a-z0-9]{1,29}$")
"""A Python package, a distribution (`asf-<name>`), a DNS label in Kubernetes and a database
name at once: lower-case letters and digits, starting with a letter."""
TAKEN = {"asf", "kit", "contracts", "testsupport", "tests", "deploy", "bench", "scaffold",
         "web", "test", "app", "api"}


class Fill(Template):
    """`{{ name }}` placeholders: nothing else in a Dockerfile, YAML or Python is one."""

    delimiter = "{{"
    # A str, which Template compiles (typeshed types the compiled attribute).
    pattern = r"""
        \{\{(?:
          (?P<escaped>!)                       # {{! writes {{
        | \s*(?P<named>[A-Za-z_]+)\s*\}\}
        | (?P<braced>(?!))                     # no other form
        | (?P<invalid>)
        )"""  # type: ignore[assignment]


class Refused(Exception):
    """Why the service cannot be made (nothing has been written)."""


def values(name: str, port: int) -> dict[str, str]:
    return {"name": name, "Name": name.capitalize(), "port": str(port)}


def render(text: str, v: dict[str, str]) -> str:
    return Fill(text).substitute(v)


def check_name(root: Path, name: str) -> None:
    if not NAME.match(name):
        raise Refused(f"NAME {name!r}: lower-case letters and digits, starting with a letter, "
                      "2 to 30 long (it is a package, an image, a Kubernetes name and a "
                      "database name)")
    if keyword.iskeyword(name) or name in TAKEN or name in sys.stdlib_module_names:
        raise Refused(f"NAME {name!r} is taken (a keyword, a standard module or a folder of "
                      "the repository)")
    if (root / "services" / name).exists():
        raise Refused(f"services/{name} exists already")


def service_ports(root: Path) -> set[int]:
    """The ports the services' settings give them."""
    found: set[int] = set()
    for settings in root.glob("services/*/src/*/settings.py"):
        found |= {int(p) for p in re.findall(r"^\s*port: int = (\d+)", settings.read_text(),
                                             re.M)}
    return found


def ports_in_use(root: Path) -> set[int]:
    """The services' ports and those the compose file publishes (the mail catcher's...)."""
    found = service_ports(root)
    compose = root / "deploy" / "compose.yaml"
    if compose.exists():
        found |= {int(p) for p in re.findall(r'"(\d+):\d+"', compose.read_text())}
    return found


def check_port(root: Path, port: int) -> None:
    if not 1024 <= port <= 65535:
        raise Refused(f"PORT {port}: from 1024 to 65535")
    if port in ports_in_use(root):
        raise Refused(f"PORT {port} is in use by another service already")


def next_port(root: Path) -> int:
    """The first port after the services' own that nothing else uses."""
    port = max(service_ports(root) or {8000}) + 1
    while port in ports_in_use(root):
        port += 1
    return port


# --- writing -------------------------------------------------------------------------------


def write_service(root: Path, v: dict[str, str]) -> list[Path]:
    return _render_tree(TEMPLATE / "service", root / "services" / v["name"], v)


def _edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text()
    changed = change(text)
    if changed == text:
        raise Refused(f"{path}: found nowhere to enter the service")
    path.write_text(changed)


def _append_to_list(text: str, key: str, item: str) -> str:
    """`key = [..., item]` for a one-line TOML list of strings."""
    pattern = re.compile(rf'^({re.escape(key)} = \[)(.*)(\])$', re.M)
    match = pattern.search(text)
    if match is None:
        raise Refused(f"pyproject.toml: no one-line list {key}")
    items = match.group(2)
    if f'"{item}"' in items:
        return text
    return text[:match.start(2)] + f'{items}, "{item}"' + text[match.end(2):]


def enter_in_pyproject(root: Path, v: dict[str, str]) -> None:
    name = v["name"]

    def change(text: str) -> str:
        text = _append_to_list(text, "dependencies", f"asf-{name}")
        text = _append_to_list(text, "known-first-party", name)
        text = _append_to_list(text, "mypy_path", f"services/{name}/src")
        text = _append_to_list(text, "files", f"services/{name}/src")
        tests = f"services/{name}/tests"
        text = re.sub(r'^(testpaths = \[.*?)(, "tests"\])$',
                      lambda m: m.group(1) + f', "{tests}"' + m.group(2), text, count=1,
                      flags=re.M)
        text = re.sub(r"^(asf-testing = \{ workspace = true \})$",
                      f"asf-{name} = {{ workspace = true }}\n" + r"\1", text, count=1,
                      flags=re.M)
        return text

    path = root / "pyproject.toml"
    _edit(path, change)
    parsed = tomllib.loads(path.read_text())
    assert f"asf-{name}" in parsed["project"]["dependencies"]
    assert f"asf-{name}" in parsed["tool"]["uv"]["sources"]
    assert f"services/{name}/tests" in parsed["tool"]["pytest"]["ini_options"]["testpaths"]


def enter_in_compose(root: Path, v: dict[str, str]) -> None:
    """A block like the registry's, before `volumes:`: with the databases' password and the
    loopback ports where the compose file has them (`x-depends`), plain otherwise."""
    path = root / "deploy" / "compose.yaml"
    style = "unit" if "x-depends: &depends" in path.read_text() else "base"
    block = render((TEMPLATE / "deploy" / f"compose-{style}.yaml.tmpl").read_text(), v)
    _edit(path, lambda text: text.replace("\nvolumes:\n", f"\n{block.rstrip()}\n\nvolumes:\n", 1))


def enter_in_kubernetes(root: Path, v: dict[str, str]) -> list[Path]:
    """Kubernetes in whichever layout the repository has: a unit of its own per service
    (`deploy/k8s/<service>/{base,production}` beside `platform/`), or one base and one
    production overlay for all."""
    k8s = root / "deploy" / "k8s"
    if (k8s / "platform").is_dir():
        return _kubernetes_unit(k8s, v)
    if (k8s / "base" / "kustomization.yaml").exists():
        return _kubernetes_base(k8s, v)
    raise Refused("deploy/k8s: neither platform/ with a unit per service nor base/")


def _render_tree(source: Path, target: Path, v: dict[str, str]) -> list[Path]:
    written = []
    for template in sorted(source.rglob("*.tmpl")):
        out = target / render(str(template.relative_to(source)), v).removesuffix(".tmpl")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(template.read_text(), v))
        written.append(out)
    return written


def _kubernetes_unit(k8s: Path, v: dict[str, str]) -> list[Path]:
    """`deploy/k8s/<name>/base` and `production`, and in the platform its NetworkPolicies
    (its own database and the broker; scraped by Prometheus) and its place among those
    that may reach the broker and fetch the identity provider's keys."""
    name = v["name"]
    if (k8s / name).exists():
        raise Refused(f"deploy/k8s/{name} exists already")
    written = _render_tree(TEMPLATE / "deploy" / "k8s-unit", k8s / name, v)
    policies = k8s / "platform" / "networkpolicies.yaml"
    extra = render((TEMPLATE / "deploy" / "networkpolicies-unit.yaml.tmpl").read_text(), v)

    def change(text: str) -> str:
        # the lists of pods that fetch the JWKS and that reach the broker
        text = re.sub(r"(values: \[registry, casework, notifications)(, web)?\]",
                      lambda m: f"{m.group(1)}, {name}{m.group(2) or ''}]", text)
        return text.rstrip("\n") + "\n" + extra

    _edit(policies, change)
    return written


def _kubernetes_base(k8s: Path, v: dict[str, str]) -> list[Path]:
    """One Deployment, Service, HPA, PodDisruptionBudget and ConfigMap in the base, and the
    image pinned in the production overlay."""
    name = v["name"]
    folder = k8s / "base" / name
    if folder.exists():
        raise Refused(f"deploy/k8s/base/{name} exists already")
    written = _render_tree(TEMPLATE / "deploy" / "k8s-base", folder, v)
    order = ["deployment.yaml", "service.yaml", "hpa.yaml", "pdb.yaml", "configmap.yaml"]
    kinds = sorted((p.name for p in written), key=order.index)
    lines = "".join(f"  - {name}/{kind}\n" for kind in kinds)
    _edit(k8s / "base" / "kustomization.yaml", lambda text: text.rstrip("\n") + "\n" + lines)
    image = (f'  - {{name: asf-samverkan/{name}, newName: registry.example.se/asf-samverkan/'
             f'{name}, newTag: "0.1.0"}}\n')
    _edit(k8s / "overlays" / "production" / "kustomization.yaml",
          lambda text: re.sub(r"(^images:\n(?:  - .*\n)+)", lambda m: m.group(1) + image, text,
                              count=1, flags=re.M))
    return written


NEXT_STEPS = """\
{name}: services/{name}/ on port {port}, in pyproject.toml, deploy/compose.yaml and
deploy/k8s (base and production). Next:
  uv lock && uv sync                      (make new-service has done both)
  uv run pytest services/{name}/tests      (it starts and answers /healthz and /readyz)
Then, as the service grows:
  - its rules in domain.py, tested without a database (pytestmark = pytest.mark.fast);
  - a route: a row for every caller in tests/access/test_{name}_access.py;
  - an event it publishes: in contracts/ (uv run python -m asf_contracts.schemas --release);
  - an event it consumes: handlers.py, then {name} in deploy/rabbitmq/generate.py;
  - a setting production needs: the Kubernetes ConfigMap or a secret ({name}-secrets);
  - make run starts the services deploy/run_local.py lists: add {name} there.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name")
    parser.add_argument("--port", type=int, help="its HTTP port (default: the next free 80xx)")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    try:
        check_name(root, args.name)
        port = args.port if args.port is not None else next_port(root)
        check_port(root, port)
        v = values(args.name, port)
        write_service(root, v)
        enter_in_pyproject(root, v)
        enter_in_compose(root, v)
        enter_in_kubernetes(root, v)
    except Refused as e:
        print(f"new-service: {e}", file=sys.stderr)
        return 2
    print(NEXT_STEPS.format(name=args.name, port=port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
