"""`registry serve | migrate | token | seed-demo`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from importlib.metadata import version as _dist_version
from pathlib import Path

from asf_kit import cli
from registry.settings import RegistrySettings

VERSION = _dist_version("asf-registry")  # not from `app`: serve checks settings first
MIGRATIONS = Path(__file__).parent / "migrations"
if not MIGRATIONS.exists():  # running from a source checkout
    MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _seed(args: argparse.Namespace) -> int:
    from registry.demo import seed

    created = asyncio.run(seed(RegistrySettings()))
    print(f"demo companies: {created} created")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.main(
        prog="registry", version=VERSION, settings_factory=RegistrySettings,
        app_factory="registry.app:create_app", migrations=MIGRATIONS,
        extra={"seed-demo": ("add demo companies if the register is empty",
                             lambda p: None, _seed)},
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
