"""The commands every service has: `serve`, `migrate`, `token`. Services add their own.

Imports stay light until a command needs more, so `serve` refuses unsafe production settings
within a second or two, before the HTTP stack is loaded."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from asf_kit.roles import Role
from asf_kit.settings import ServiceSettings, UnsafeForProduction

Command = Callable[[argparse.Namespace], int]


def migrations_of(cli_module: str) -> Path:
    """A service's migrations, from its `cli.py` (`__file__`): packaged beside its modules in
    an installed wheel, or the service folder's `migrations/` in a source checkout."""
    packaged = Path(cli_module).parent / "migrations"
    return packaged if packaged.exists() else Path(cli_module).resolve().parents[2] / "migrations"


def _run_migrate(settings: ServiceSettings, migrations: Path) -> int:
    from asf_kit.db import MigrationLockTimeout, ensure_database, migrate

    async def go() -> None:
        created = await ensure_database(settings.database_url)
        if created:
            print("created database", settings.database_url.rsplit("/", 1)[-1])
        applied = await migrate(settings.database_url, migrations,
                                settings.migration_lock_timeout)
        print("applied:", ", ".join(applied) if applied else "nothing new")

    try:
        asyncio.run(go())
    except MigrationLockTimeout as e:
        print(e, file=sys.stderr)
        return 3
    return 0


def _run_token(settings: ServiceSettings, args: argparse.Namespace) -> int:
    from asf_kit.auth import mint_token

    if not settings.jwt_secret:
        print("JWT_SECRET is not set; development tokens are signed with it", file=sys.stderr)
        return 2
    print(mint_token(
        settings.jwt_secret, args.sub, args.role, name=args.name,
        municipality_code=args.municipality, company_id=args.company,
        ttl=timedelta(hours=args.hours), issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
    ))
    return 0


def _run_dlq(settings: ServiceSettings, service: str, args: argparse.Namespace) -> int:
    from asf_contracts.topology import ServiceQueues
    from asf_kit import dlq

    queues = ServiceQueues(service=settings.queue_namespace + service)
    if args.action == "redrive":
        n = asyncio.run(dlq.redrive(settings.broker_url, queues, args.message_id))
        print(f"redriven: {n}")
        return 0
    parked = asyncio.run(dlq.list_parked(settings.broker_url, queues))
    if args.message_id:
        parked = [p for p in parked if p.message_id == args.message_id]
    if not parked:
        print(f"{queues.dead_letter}: empty" if not args.message_id else "no such message")
        return 0 if not args.message_id else 1
    for p in parked:
        print(f"{p.message_id}  {p.parked_at}  {p.routing_key}  {p.reason}")
        if args.action == "show":
            print(p.body.decode("utf-8", errors="replace"))
    return 0


def main(
    *,
    prog: str,
    version: str,
    settings_factory: Callable[[], ServiceSettings],
    app_factory: str,
    migrations: Path,
    extra: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Command]] | None = None,
    consumes: bool = False,
    argv: list[str] | None = None,
) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP API, consumers and outbox relay")
    serve.add_argument("--migrate", action="store_true", help="apply migrations first")
    sub.add_parser("migrate", help="create the database if missing and apply migrations")
    token = sub.add_parser("token", help="mint a development token (HS256, JWT_SECRET)")
    token.add_argument("--sub", required=True, help="user id")
    token.add_argument("--role", action="append", required=True,
                       choices=[r.value for r in Role], help="repeat for more roles")
    token.add_argument("--name")
    token.add_argument("--municipality", help="4-digit municipality code (case workers)")
    token.add_argument("--company", help="company id (company representatives)")
    token.add_argument("--hours", type=float, default=12)
    if consumes:
        dlq = sub.add_parser("dlq", help="list, show or redrive parked dead-letter messages")
        dlq.add_argument("action", choices=["list", "show", "redrive"])
        dlq.add_argument("message_id", nargs="?", help="show / redrive only this message")
    for name, (help_text, configure_parser, _) in (extra or {}).items():
        configure_parser(sub.add_parser(name, help=help_text))
    args = parser.parse_args(argv)
    settings = settings_factory()
    if args.command == "serve":
        try:
            settings.require_safe_for_production()
        except UnsafeForProduction as e:
            print(f"{prog}: {e}", file=sys.stderr)
            return 2
    from asf_kit.logging import configure

    configure(prog, version, settings.log_level, settings.log_format)

    if args.command == "migrate":
        return _run_migrate(settings, migrations)
    if args.command == "token":
        return _run_token(settings, args)
    if args.command == "dlq":
        return _run_dlq(settings, prog, args)
    if args.command == "serve":
        if args.migrate and (failed := _run_migrate(settings, migrations)):
            return failed
        import uvicorn

        from asf_kit import runtime

        runtime.FREEZE_HEAP_AFTER_START = True
        uvicorn.run(app_factory, factory=True, host=settings.host, port=settings.port,
                    log_config=None, access_log=False, loop="auto", timeout_graceful_shutdown=20)
        return 0
    handler: Any = (extra or {})[args.command][2]
    return int(handler(args))
