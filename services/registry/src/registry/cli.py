"""`registry serve | migrate | token | seed-demo | sweep-verifications`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from importlib.metadata import version as _dist_version
from pathlib import Path

from asf_kit import cli
from asf_kit.db import create_pool
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


def _sweep_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--today", type=date.fromisoformat,
                   help="the day to sweep for (YYYY-MM-DD; default: today in Sweden)")


def _sweep(args: argparse.Namespace) -> int:
    from registry.service import Registry

    async def go() -> None:
        settings = RegistrySettings()
        pool = await create_pool(settings.database_url, 1, 2)
        try:
            swept = await Registry(lambda: pool).sweep_verifications(args.today)
        finally:
            await pool.close()
        print(f"verifications: {swept.warned} warned of expiry, {swept.expired} expired")

    asyncio.run(go())
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.main(
        prog="registry", version=VERSION, settings_factory=RegistrySettings,
        app_factory="registry.app:create_app", migrations=MIGRATIONS,
        extra={
            "seed-demo": ("add demo companies if the register is empty",
                          lambda p: None, _seed),
            "sweep-verifications": (
                "warn of verifications running out in 30 days and expire those past their "
                "last day (each once; the running service's relay publishes the events)",
                _sweep_arguments, _sweep),
        },
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
