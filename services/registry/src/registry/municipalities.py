"""The 290 Swedish municipalities and their 21 counties (see `data/README.md` for the source)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_CSV = Path(__file__).parent / "data" / "municipalities.csv"


@dataclass(frozen=True)
class Municipality:
    code: str
    name: str
    county_code: str
    county_name: str


@cache
def all_municipalities() -> dict[str, Municipality]:
    with _CSV.open(encoding="utf-8", newline="") as f:
        return {row["code"]: Municipality(**row) for row in csv.DictReader(f)}


@cache
def counties() -> dict[str, str]:
    """County code → county name."""
    return {m.county_code: m.county_name for m in all_municipalities().values()}


def municipality(code: str) -> Municipality | None:
    return all_municipalities().get(code)
