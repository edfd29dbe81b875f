"""Shared bits of the benchmarks: figures, databases, event bodies."""

from __future__ import annotations

import collections
import contextlib
import os
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import orjson

PG = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
AMQP = os.environ.get("BENCH_BROKER_URL", "amqp://guest:guest@127.0.0.1:5672/")


@dataclass
class Result:
    name: str
    count: int
    seconds: float
    latencies: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds else 0.0

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "count": self.count, "per_second": round(self.rate, 1),
                "p50_ms": round(self.pct(50), 2), "p99_ms": round(self.pct(99), 2),
                "mean_ms": round(statistics.fmean(self.latencies) * 1000, 2)
                if self.latencies else None}


@contextlib.asynccontextmanager
async def scratch_database(prefix: str) -> AsyncIterator[str]:
    name = f"bench_{prefix}_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(PG)
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    dsn = PG.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield dsn
    finally:
        admin = await asyncpg.connect(PG)
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def company_event(i: int, company_id: uuid.UUID | None = None) -> dict[str, Any]:
    """A registry.company.registered.v1 envelope, as the registry publishes it."""
    cid = company_id or uuid.uuid4()
    return {
        "event_id": str(uuid.uuid4()),
        "event_type": "registry.company.registered",
        "event_version": 1,
        "occurred_at": datetime.now(UTC).isoformat(),
        "producer": "registry",
        "correlation_id": str(uuid.uuid4()),
        "causation_id": None,
        "aggregate_id": str(cid),
        "aggregate_version": 1,
        "payload": {
            "id": str(cid), "org_number": f"769{i:07d}"[:6] + "-" + f"{i:04d}"[-4:],
            "name": f"Bench Kooperativ {i}", "legal_form": "ekonomisk_forening",
            "municipality_code": "0180", "county_code": "01",
            "industries": ["second_hand"], "training_places": 10, "origin": "existing",
            "status": "active", "qualifies_as_asf": True, "reserved_contract_eligible": True,
            "verification_level": "verified", "verified_at": None, "valid_until": None,
            "contacts": [], "deregistration_reason": None, "decision_note": None,
        },
    }


def encode(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def now() -> float:
    return time.perf_counter()


@dataclass
class Samples:
    """A py-spy `raw` record counted: by the group of each sample's innermost frame in a
    known module (`groups`: name, a piece of the frame's file path), and by own frame."""

    by_group: collections.Counter[str] = field(default_factory=collections.Counter)
    own: collections.Counter[str] = field(default_factory=collections.Counter)
    total: int = 0
    in_group: dict[str, collections.Counter[str]] = field(
        default_factory=lambda: collections.defaultdict(collections.Counter))
    """Per group, the frame of that group a sample was counted at (its innermost there)."""


def count_samples(raw: Path, groups: tuple[tuple[str, str], ...],
                  skip: tuple[str, ...] = (), other: str = "other (the loop, C code)") -> Samples:
    """Count a py-spy raw file; a sample whose stack holds one of `skip` is left out."""
    out = Samples()
    for line in raw.read_text().splitlines():
        stack, n = line.rsplit(" ", 1)
        if any(marker in stack for marker in skip):
            continue
        count = int(n)
        out.total += count
        frames = stack.split(";")
        out.own[frames[-1]] += count
        for frame in reversed(frames):
            name = next((g for g, needle in groups if needle in frame), None)
            if name is not None:
                out.by_group[name] += count
                out.in_group[name][frame.rsplit(":", 1)[0] + ")"] += count
                break
        else:
            out.by_group[other] += count
    return out
