"""The OpenAPI documents of the three services, generated from their apps (FastAPI's
document, refined by `asf_kit.openapi`), into `contracts/openapi/`.

    python -m asf_testing.openapi            write contracts/openapi/<service>.json
    python -m asf_testing.openapi --check    fail when the checked-in files have drifted
    python -m asf_testing.openapi --release  also freeze contracts/openapi/released/<service>.json
                                             where none is released yet

(`make openapi` runs the first.) The released document is the published contract that
`asf_contracts.openapi.breaking_changes` holds every later one to.
"""

from __future__ import annotations

import argparse
import base64
import sys
from pathlib import Path
from typing import Any

from asf_contracts.openapi import OPENAPI_DIR, RELEASED_OPENAPI_DIR, SERVICES, dumps
from asf_testing.tokens import JWT_TEST_SECRET

_SETTINGS: dict[str, Any] = {"app_env": "development", "jwt_secret": JWT_TEST_SECRET}


def document(service: str) -> dict[str, Any]:
    """What `service` serves at `/openapi.json`, without a database or a broker (the app is
    built, not started)."""
    if service == "registry":
        from registry.app import create_app as registry_app
        from registry.settings import RegistrySettings

        return registry_app(RegistrySettings(**_SETTINGS)).openapi()
    if service == "casework":
        from casework.app import create_app as casework_app
        from casework.settings import CaseworkSettings

        key = base64.b64encode(b"openapi-document-key-0123456789a").decode()
        return casework_app(CaseworkSettings(**_SETTINGS, casework_data_key=key)).openapi()
    if service == "notifications":
        from notifications.app import create_app as notifications_app
        from notifications.settings import NotificationsSettings

        return notifications_app(NotificationsSettings(**_SETTINGS)).openapi()
    raise ValueError(f"no such service: {service}")


def expected_files() -> dict[Path, str]:
    return {OPENAPI_DIR / f"{s}.json": dumps(document(s)) for s in SERVICES}


def drifted() -> list[Path]:
    """Checked-in documents that differ from what the apps serve."""
    return sorted(p for p, text in expected_files().items()
                  if not p.exists() or p.read_text(encoding="utf-8") != text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when files have drifted")
    parser.add_argument("--release", action="store_true",
                        help="also freeze the documents of services not yet released")
    args = parser.parse_args(argv)
    if args.check:
        bad = drifted()
        for p in bad:
            print(f"drifted: {p.name} (regenerate: make openapi)", file=sys.stderr)
        return 1 if bad else 0
    OPENAPI_DIR.mkdir(exist_ok=True)
    for path, text in expected_files().items():
        path.write_text(text, encoding="utf-8")
    if args.release:
        RELEASED_OPENAPI_DIR.mkdir(exist_ok=True)
        for path in sorted(OPENAPI_DIR.glob("*.json")):
            target = RELEASED_OPENAPI_DIR / path.name
            if not target.exists():
                target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
                print(f"released {path.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
