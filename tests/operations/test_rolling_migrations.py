"""Migrations are safe for a rolling deploy (README, "Migrations: expand, then contract").

While a new release rolls out, its migration runs (the init container) and the previous
release's pods keep serving on the migrated database until they are replaced. So for each
service this test:

1. finds the previous release: the last git tag or, without tags, the commit before the
   one that added the service's (or the kit's) newest migration; with a newest migration
   not yet committed, the last commit;
2. checks that release's code out (`git archive`), migrates a fresh database with it, and
   starts it as a process;
3. runs that release's smoke checks (`services/<svc>/tests/smoke.py` as it was then, or
   today's where it had none): `/readyz` and a basic read and write;
4. applies today's migrations while that process keeps running, and runs its smoke checks
   again (reading back what it wrote before);
5. starts today's code on the same database and runs today's smoke checks, reading back
   what the previous release wrote.

A migration that would break the running release fails here. Two more runs show the check
can fail: a column renamed under the running code is caught, an added column is not.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import io
import shutil
import subprocess
import sys
import tarfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest

from asf_contracts import EXCHANGE
from asf_contracts.topology import ServiceQueues
from asf_kit.db import migrate
from asf_testing import (
    DATA_KEY,
    auth,
    delete_queues,
    free_port,
    fresh_database,
    service_process,
    unique_namespace,
)

ROOT = Path(__file__).resolve().parents[2]
KIT_MIGRATIONS = "kit/src/asf_kit/migrations"
SERVICES = ("registry", "casework", "notifications")


def git(*args: str, check: bool = True) -> str:
    result = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                            check=False, timeout=60)
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.strip()}")
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass(frozen=True)
class Release:
    commit: str
    what: str


def migration_paths(service: str) -> list[str]:
    return [f"services/{service}/migrations", KIT_MIGRATIONS]


def migrations_at(commit: str, service: str) -> set[str]:
    listed = git("ls-tree", "-r", "--name-only", commit, "--", *migration_paths(service),
                 check=False)
    return {line for line in listed.splitlines() if line.endswith(".sql")}


def migrations_now(service: str) -> set[str]:
    return {str(p.relative_to(ROOT)) for d in migration_paths(service)
            for p in (ROOT / d).glob("*.sql")}


def previous_release(service: str) -> Release | str:
    """The release whose code runs while today's migrations are applied; or why there is none."""
    if not git("rev-parse", "--git-dir", check=False):
        return "not a git checkout: no previous release to run"
    tag = git("describe", "--tags", "--abbrev=0", "HEAD", check=False)
    if tag:
        commit = git("rev-parse", f"{tag}^{{commit}}")
        if migrations_at(commit, service) == migrations_now(service):
            return f"no migration of {service} since the last tag {tag}"
        return Release(commit, f"the last tag {tag}")
    if git("status", "--porcelain", "--", *migration_paths(service)):
        return Release(git("rev-parse", "HEAD"), "the last commit (a migration is uncommitted)")
    added = git("log", "-1", "--format=%H", "--diff-filter=A", "--",
                *migration_paths(service), check=False)
    if not added:
        return f"{service} has no committed migration"
    parent = git("rev-parse", "--verify", "--quiet", f"{added}^1", check=False)
    if not parent:
        if git("rev-parse", "--is-shallow-repository", check=False) == "true":
            return "a shallow clone: the commit before the newest migration is not here"
        return f"the newest migration of {service} came with the first commit"
    if not any(m.startswith(f"services/{service}/") for m in migrations_at(parent, service)):
        return f"{service}'s first migration is its newest: no earlier release ran it"
    return Release(parent, f"{parent[:10]}, the commit before {added[:10]} added a migration")


def check_out(commit: str, service: str, into: Path) -> Path:
    """The kit, the contracts and the service as they were at `commit`."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, "kit", "contracts", f"services/{service}"],
        cwd=ROOT, capture_output=True, check=True, timeout=120)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into, filter="data")
    return into


def python_path(tree: Path, service: str) -> str:
    return ":".join(str(tree / p) for p in ("kit/src", "contracts/src", f"services/{service}/src"))


def smoke_checks(tree: Path | None, service: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """The release's own smoke checks; today's where that release had none."""
    path = tree / "services" / service / "tests" / "smoke.py" if tree else None
    if path is None or not path.exists():
        path = ROOT / "services" / service / "tests" / "smoke.py"
    spec = importlib.util.spec_from_file_location(f"smoke_{service}_{abs(hash(path))}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    check: Callable[..., Awaitable[dict[str, Any]]] = module.smoke
    return check


def service_env(service: str, dsn: str, broker_url: str, namespace: str,
                tmp_path: Path) -> dict[str, str]:
    env = {"DATABASE_URL": dsn, "BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace,
           "APP_ENV": "development", "RELAY_POLL_INTERVAL": "0.2",
           "FOLLOW_UP_SWEEP_INTERVAL": "0"}
    if service == "casework":
        env["CASEWORK_DATA_KEY"] = DATA_KEY
    if service == "notifications":  # the built-in mail catcher, on a port of its own
        env |= {"MAILCATCHER_PORT": str(free_port()), "MAILCATCHER_DIR": str(tmp_path / "mail"),
                "SWEEPER_INTERVAL": "0.5"}
    return env


@contextlib.asynccontextmanager
async def publisher(broker_url: str) -> AsyncIterator[Callable[[str, bytes, str], Awaitable[None]]]:
    connection = await aio_pika.connect(broker_url)
    try:
        channel = await connection.channel()
        exchange = await channel.declare_exchange(EXCHANGE, aio_pika.ExchangeType.TOPIC,
                                                  durable=True)

        async def publish(routing_key: str, body: bytes, message_id: str) -> None:
            await exchange.publish(aio_pika.Message(
                body, message_id=message_id, content_type="application/json",
                delivery_mode=aio_pika.DeliveryMode.PERSISTENT), routing_key=routing_key)

        yield publish
    finally:
        await connection.close()


def run_migrate(tree: Path, service: str, dsn: str) -> None:
    """The release's own `migrate` command, as its init container runs it."""
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": python_path(tree, service),
           "DATABASE_URL": dsn, "APP_ENV": "development", "LOG_LEVEL": "WARNING"}
    result = subprocess.run([sys.executable, "-m", f"{service}.cli", "migrate"], env=env,
                            capture_output=True, text=True, check=False, timeout=120)
    assert result.returncode == 0, f"{service} migrate at the previous release: {result.stderr}"


def imported_from(tree: Path, service: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", f"import {service}, asf_kit; print({service}.__file__, "
         "asf_kit.__file__)"],
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": python_path(tree, service)},
        capture_output=True, text=True, check=True, timeout=60)
    return result.stdout


async def rolling_deploy(service: str, old_tree: Path, new_migrations: Path, *,
                         postgres_url: str, broker_url: str, tmp_path: Path,
                         new_code: bool = True) -> list[str]:
    """Steps 2 to 5 of the module docstring; returns the migrations applied under the old
    code. Raises AssertionError naming what broke."""
    assert str(old_tree) in imported_from(old_tree, service), "the old code is not the one run"
    namespace = unique_namespace()
    client = httpx.AsyncClient(timeout=30)
    try:
        async with (
            fresh_database(postgres_url, f"rolling_{service}", None) as dsn,
            publisher(broker_url) as publish,
        ):
            await asyncio.to_thread(run_migrate, old_tree, service, dsn)
            env = service_env(service, dsn, broker_url, namespace, tmp_path)
            old_smoke = smoke_checks(old_tree, service)
            context = {"client": client, "auth": auth, "publish": publish}
            async with service_process(
                f"{service}.cli", {**env, "PYTHONPATH": python_path(old_tree, service)},
                tmp_path / f"{service}-previous.log",
            ) as old:
                before = await old_smoke(base_url=old.base_url, **context)
                applied = await migrate(dsn, new_migrations)
                try:
                    await old_smoke(base_url=old.base_url, earlier=before, **context)
                except (AssertionError, httpx.HTTPError) as e:
                    raise AssertionError(
                        f"{', '.join(applied)} breaks the running previous release of "
                        f"{service}: {e}\n--- its log ---\n{old.log()[-3000:]}") from e
            if new_code:
                async with service_process(f"{service}.cli", env,
                                           tmp_path / f"{service}-new.log") as new:
                    try:
                        await smoke_checks(None, service)(base_url=new.base_url,
                                                          earlier=before, **context)
                    except (AssertionError, httpx.HTTPError) as e:
                        raise AssertionError(
                            f"today's {service} cannot work with what the previous release "
                            f"wrote: {e}\n--- its log ---\n{new.log()[-3000:]}") from e
            return applied
    finally:
        await client.aclose()
        await delete_queues(broker_url, ServiceQueues(service=namespace + service))


@pytest.mark.timeout(240)
@pytest.mark.parametrize("service", SERVICES)
async def test_newest_migrations_keep_the_previous_release_running(
    service: str, postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    release = previous_release(service)
    if isinstance(release, str):
        pytest.skip(release)
    old_tree = check_out(release.commit, service, tmp_path / "previous")
    new_migrations = ROOT / "services" / service / "migrations"
    applied = await rolling_deploy(service, old_tree, new_migrations, postgres_url=postgres_url,
                                   broker_url=broker_url, tmp_path=tmp_path)
    assert applied, f"{release.what} already has every migration of today"


def with_extra_migration(tmp_path: Path, sql: str) -> Path:
    folder = tmp_path / "migrations"
    shutil.copytree(ROOT / "services" / "registry" / "migrations", folder)
    (folder / "999_rolling_check.sql").write_text(sql)
    return folder


@pytest.mark.timeout(180)
async def test_a_migration_that_breaks_the_running_release_is_caught(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    old_tree = check_out("HEAD", "registry", tmp_path / "previous")
    breaking = with_extra_migration(
        tmp_path, "ALTER TABLE companies RENAME COLUMN name TO display_name;\n")
    with pytest.raises(AssertionError, match="999_rolling_check breaks the running previous "
                                             "release of registry"):
        await rolling_deploy("registry", old_tree, breaking, postgres_url=postgres_url,
                             broker_url=broker_url, tmp_path=tmp_path, new_code=False)


@pytest.mark.timeout(180)
async def test_an_expanding_migration_passes(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    old_tree = check_out("HEAD", "registry", tmp_path / "previous")
    expanding = with_extra_migration(tmp_path, (
        "ALTER TABLE companies ADD COLUMN rolling_note text;\n"
        "CREATE INDEX companies_rolling_note ON companies (rolling_note);\n"))
    applied = await rolling_deploy("registry", old_tree, expanding, postgres_url=postgres_url,
                                   broker_url=broker_url, tmp_path=tmp_path)
    assert applied == ["service/999_rolling_check"]


def test_the_previous_release_is_found() -> None:
    for service in SERVICES:
        release = previous_release(service)
        if isinstance(release, Release):
            assert migrations_at(release.commit, service) != migrations_now(service) or \
                "uncommitted" in release.what
        else:
            assert release  # a reason to skip, said out loud
