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
- `deploy/compose.yaml`; its own Kubernetes unit (`deploy/k8s/<name>/base` and `production`)
  and its NetworkPolicies in `deploy/k8s/platform`.

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
    """A block like the registry's, before `volumes:`."""
    block = render((TEMPLATE / "deploy" / "compose.yaml.tmpl").read_text(), v)
    _edit(root / "deploy" / "compose.yaml",
          lambda text: text.replace("\nvolumes:\n", f"\n{block.rstrip()}\n\nvolumes:\n", 1))


def _render_tree(source: Path, target: Path, v: dict[str, str]) -> list[Path]:
    written = []
    for template in sorted(source.rglob("*.tmpl")):
        out = target / render(str(template.relative_to(source)), v).removesuffix(".tmpl")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render(template.read_text(), v))
        written.append(out)
    return written


def enter_in_kubernetes(root: Path, v: dict[str, str]) -> list[Path]:
    """Its own unit, `deploy/k8s/<name>/base` and `production`, and in the platform its
    NetworkPolicies (its own database and the broker; the web app and Prometheus in) and its
    place among those that may reach the broker and fetch the identity provider's keys."""
    name = v["name"]
    k8s = root / "deploy" / "k8s"
    if (k8s / name).exists():
        raise Refused(f"deploy/k8s/{name} exists already")
    written = _render_tree(TEMPLATE / "deploy" / "k8s", k8s / name, v)
    extra = render((TEMPLATE / "deploy" / "networkpolicies.yaml.tmpl").read_text(), v)

    def change(text: str) -> str:
        # the lists of the pods that reach the broker and that fetch the JWKS
        text = re.sub(r"(values: \[registry, casework, notifications)(, web)?\]",
                      lambda m: f"{m.group(1)}, {name}{m.group(2) or ''}]", text)
        return text.rstrip("\n") + "\n" + extra

    _edit(k8s / "platform" / "networkpolicies.yaml", change)
    return written


NEXT_STEPS = """\
{name}: services/{name}/ on port {port}, in pyproject.toml, deploy/compose.yaml,
deploy/k8s/{name}/ and deploy/k8s/platform. Next:
  uv lock && uv sync                      (make new-service has done both)
  uv run pytest services/{name}/tests      (it starts and answers /healthz and /readyz)
Then, as the service grows:
  - its rules in domain.py, tested without a database (pytestmark = pytest.mark.fast);
  - a route: a row for every caller in tests/access/test_{name}_access.py;
  - an event it publishes: in contracts/ (uv run python -m asf_contracts.schemas --release);
  - an event it consumes: handlers.py, then {name} in deploy/rabbitmq/generate.py;
  - a setting production needs: the Kubernetes ConfigMap or a secret ({name}-secrets);
  - make run starts the services deploy/run_local.py lists: add {name} there;
  - its dashboard (deploy/monitoring/dashboards.py) and, with a tests/smoke.py, the rolling
    migration check (tests/operations/test_rolling_migrations.py) list their services too.
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
        _render_tree(TEMPLATE / "service", root / "services" / args.name, v)
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
