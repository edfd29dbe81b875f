"""`casework serve | migrate | token | seed-demo | sweep-follow-ups | sweep-plan-reviews |
close-month | rotate-key | reseal`."""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import date
from importlib.metadata import version as _dist_version
from pathlib import Path

from asf_kit import cli
from casework.settings import CaseworkSettings

VERSION = _dist_version("asf-casework")  # not from `app`: serve checks settings first
MIGRATIONS = Path(__file__).parent / "migrations"
if not MIGRATIONS.exists():  # running from a source checkout
    MIGRATIONS = Path(__file__).resolve().parents[2] / "migrations"


def _seed_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--wait", type=float, default=10.0,
                   help="seconds to wait for active companies in the read model")


def _seed(args: argparse.Namespace) -> int:
    from casework.demo import seed

    created, placed = asyncio.run(seed(CaseworkSettings(), wait=args.wait))
    print(f"demo participants: {created} created, {placed} placed at a company")
    return 0


def _sweep_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--today", type=date.fromisoformat, default=None,
                   help="the date to sweep as of (YYYY-MM-DD); today by default")


def _sweep(args: argparse.Namespace) -> int:
    from casework.maintenance import sweep

    count = asyncio.run(sweep(CaseworkSettings(), args.today))
    print(f"follow-ups announced: {count}")
    return 0


def _plan_reviews(args: argparse.Namespace) -> int:
    from casework.maintenance import sweep_plan_reviews

    count = asyncio.run(sweep_plan_reviews(CaseworkSettings(), args.today))
    print(f"plan reviews announced: {count}")
    return 0


def _close_args(p: argparse.ArgumentParser) -> None:
    from casework.workdays import Month

    p.add_argument("--month", type=Month.parse, default=None,
                   help="close this month (YYYY-MM) now, whatever the day")
    p.add_argument("--today", type=date.fromisoformat, default=None,
                   help="close the month before this day's, if it is on or after the first "
                   "working day (YYYY-MM-DD); today by default")


def _close(args: argparse.Namespace) -> int:
    from casework.maintenance import close_month

    count = asyncio.run(close_month(CaseworkSettings(), args.month, args.today))
    print(f"statements issued: {count}")
    return 0


def _rotate(args: argparse.Namespace) -> int:
    from casework.maintenance import rotate

    count = asyncio.run(rotate(CaseworkSettings()))
    print(f"data keys moved to the current master key: {count}")
    return 0


def _reseal(args: argparse.Namespace) -> int:
    from casework.maintenance import reseal

    notes, names = asyncio.run(reseal(CaseworkSettings()))
    print(f"notes resealed: {notes}; employer names sealed: {names}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return cli.main(
        prog="casework", version=VERSION, settings_factory=CaseworkSettings,
        app_factory="casework.app:create_app", migrations=MIGRATIONS,
        extra={
            "seed-demo": ("add demo participants at every stage (idempotent)", _seed_args,
                          _seed),
            "sweep-follow-ups": ("announce follow-ups that have fallen due", _sweep_args,
                                 _sweep),
            "sweep-plan-reviews": ("announce plan reviews that have fallen due", _sweep_args,
                                   _plan_reviews),
            "close-month": ("issue the monthly attendance statements (once per company, "
                            "municipality and month)", _close_args, _close),
            "rotate-key": ("rewrap data keys under CASEWORK_DATA_KEY (old keys in "
                           "CASEWORK_PREVIOUS_DATA_KEYS)", lambda p: None, _rotate),
            "reseal": ("bind old notes to their id and flag, and seal employers' names "
                       "(run once after migrating to 002; safe to repeat)", lambda p: None,
                       _reseal),
        },
        consumes=True,
        argv=argv,
    )


if __name__ == "__main__":
    sys.exit(main())
