"""Write `deploy/rabbitmq/definitions.json`: the exchange, each consuming service's quorum
queues, retry and dead-letter queues and bindings, as the services themselves declare them;
and the same file for Kubernetes, `deploy/k8s/platform/rabbitmq-definitions.json` (kustomize
reads files inside its own folder only).

    uv run python deploy/rabbitmq/generate.py          # write
    uv run python deploy/rabbitmq/generate.py --check  # fail when it has drifted

Operators import it with `rabbitmqctl import_definitions deploy/rabbitmq/definitions.json`
or the management UI; the services also declare it at start, so importing is optional.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from asf_kit.topology import definitions

TARGETS = (Path(__file__).with_name("definitions.json"),
           Path(__file__).parents[1] / "k8s" / "platform" / "rabbitmq-definitions.json")
DUMMY_KEY = "ZGVmaW5pdGlvbnMtb25seS1ub3QtYS1yZWFsLWtleSE="  # 32 bytes, never used to encrypt


def consumed_keys() -> dict[str, list[str]]:
    """Each consuming service's routing keys, read from its wired app."""
    from casework.app import create_app as casework_app
    from casework.settings import CaseworkSettings
    from notifications.app import create_app as notifications_app
    from notifications.settings import NotificationsSettings

    apps: dict[str, Any] = {
        "casework": casework_app(CaseworkSettings(
            app_env="development", jwt_secret="x", casework_data_key=DUMMY_KEY)),
        "notifications": notifications_app(
            NotificationsSettings(app_env="development", jwt_secret="x")),
    }
    return {name: sorted({k for c in app.state.runtime.consumers for k in c.routing_keys})
            for name, app in apps.items()}


def render() -> str:
    return json.dumps(definitions(consumed_keys()), indent=2, sort_keys=True) + "\n"


def main() -> int:
    text = render()
    if "--check" in sys.argv:
        drifted = [t for t in TARGETS if not t.exists() or t.read_text() != text]
        for target in drifted:
            print(f"{target} has drifted; run: uv run python {__file__}", file=sys.stderr)
        return 1 if drifted else 0
    for target in TARGETS:
        target.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
