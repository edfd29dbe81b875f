"""The fault run from the command line, in its full form by default:

    uv run python tests/faults/run.py --changes 5000 --smtp-outage 30

Prints the figures and exits 1 when something was lost, duplicated or left parked.
Needs PostgreSQL and RabbitMQ on this machine (it restarts both) and root for that.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys

from faultrun import Options, fault_run, fault_tools_missing  # beside this script


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--changes", type=int, default=5000, help="state changes to push")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent clients")
    parser.add_argument("--smtp-outage", type=float, default=30.0,
                        help="seconds the SMTP server refuses connections")
    parser.add_argument("--quiet-within", type=float, default=600.0,
                        help="seconds to wait for the system to settle afterwards")
    parser.add_argument("--rate", type=float, default=0.0,
                        help="changes a second at most (0: as fast as the services go)")
    parser.add_argument("--no-infrastructure", action="store_true",
                        help="leave PostgreSQL and RabbitMQ alone (kill services, SMTP only)")
    args = parser.parse_args()
    missing = fault_tools_missing()
    if missing:
        print(f"cannot restart the local PostgreSQL and RabbitMQ: {', '.join(missing)}")
        return 2
    postgres = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    broker = os.environ.get("TEST_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")
    figures = asyncio.run(fault_run(postgres, broker, Options(
        changes=args.changes, concurrency=args.concurrency, smtp_outage=args.smtp_outage,
        quiet_within=args.quiet_within, rate=args.rate,
        restart_infrastructure=not args.no_infrastructure)))
    failures = figures.failures()
    if failures:
        print("FAILED: " + "; ".join(failures))
        return 1
    print("OK: nothing lost, nothing duplicated, nothing parked")
    return 0


if __name__ == "__main__":
    sys.exit(main())
