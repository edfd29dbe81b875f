"""`notifications serve | migrate | token | mailcatcher | mail list | digest`."""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from datetime import UTC, date, datetime
from importlib.metadata import version as _dist_version
from pathlib import Path
from typing import TYPE_CHECKING

from asf_kit import cli
from notifications.settings import NotificationsSettings

if TYPE_CHECKING:
    import asyncpg

    from notifications.service import Notifications

VERSION = _dist_version("asf-notifications")  # not from `app`: serve checks settings first
MIGRATIONS = Path(__file__).parent / "migrations"
if not MIGRATIONS.exists():  # running from a source checkout
    MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _mailcatcher(args: argparse.Namespace) -> int:
    from notifications import mailcatcher

    s = NotificationsSettings()
    controller = mailcatcher.start(Path(args.dir or s.mailcatcher_dir), s.mailcatcher_host,
                                   args.port or s.mailcatcher_port)
    print(f"mail catcher on {s.mailcatcher_host}:{controller.port}; Ctrl-C to stop")
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        controller.stop()
    return 0


def _configure_mailcatcher(p: argparse.ArgumentParser) -> None:
    p.add_argument("--dir", help="folder for the .eml files (MAILCATCHER_DIR)")
    p.add_argument("--port", type=int, help="SMTP port (MAILCATCHER_PORT)")


def _mail(args: argparse.Namespace) -> int:
    from notifications import mailcatcher

    folder = Path(args.dir or NotificationsSettings().mailcatcher_dir)
    for m in mailcatcher.caught(folder, args.limit):
        print(f"{m.received_at:%Y-%m-%d %H:%M:%S}  {m.to:40}  {m.subject}  ({m.file})")
    return 0


def _configure_mail(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="mail_command", required=True)
    listing = sub.add_parser("list", help="the caught emails, newest first")
    listing.add_argument("--dir", help="folder of the .eml files (MAILCATCHER_DIR)")
    listing.add_argument("--limit", type=int, default=50)


def _service(pool: asyncpg.Pool, s: NotificationsSettings) -> Notifications:
    from notifications.service import Notifications

    return Notifications(lambda: pool, base_url=s.frontend_base_url, timezone=s.timezone,
                         digest_hour=s.digest_hour)


def _digest(args: argparse.Namespace) -> int:
    from asf_kit.db import create_pool
    from notifications import domain

    s = NotificationsSettings()

    async def go() -> list[str]:
        pool = await create_pool(s.database_url, 1, 2)
        try:
            day = args.date or domain.digest_day(datetime.now(UTC), s.timezone, 0)
            assert day is not None
            made = await _service(pool, s).run_digest(day)
            return [str(d) for d in made]
        finally:
            await pool.close()

    made = asyncio.run(go())
    print(f"digest deliveries stored: {len(made)}; the running service sends them")
    return 0


def _configure_digest(p: argparse.ArgumentParser) -> None:
    p.add_argument("--date", type=date.fromisoformat,
                   help="the local day to sum up, YYYY-MM-DD (default: yesterday)")


def _seed_demo(_: argparse.Namespace) -> int:
    from asf_kit.db import create_pool

    s = NotificationsSettings()

    async def go() -> int:
        pool = await create_pool(s.database_url, 1, 2)
        try:
            return await _service(pool, s).seed_demo()
        finally:
            await pool.close()

    print(f"demo contacts: {asyncio.run(go())} created")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.main(
        prog="notifications", version=VERSION, settings_factory=NotificationsSettings,
        app_factory="notifications.app:create_app", migrations=MIGRATIONS,
        extra={
            "mailcatcher": ("run the development mail catcher (.eml files in a folder)",
                            _configure_mailcatcher, _mailcatcher),
            "mail": ("show what the mail catcher caught", _configure_mail, _mail),
            "digest": ("store the daily digest emails of a day", _configure_digest, _digest),
            "seed-demo": ("add demo contacts if there are none", lambda p: None, _seed_demo),
        },
        consumes=True,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
