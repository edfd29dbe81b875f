"""The fault run in its short form (see `faultrun` for what it does and `run.py` for the
full form). Restarts PostgreSQL and RabbitMQ: it runs only with `-m faults`, alone."""

from __future__ import annotations

import os

import pytest
from faultrun import Options, fault_run, fault_tools_missing


@pytest.mark.faults
@pytest.mark.timeout(900)
async def test_faults_lose_and_duplicate_nothing(postgres_url: str, broker_url: str) -> None:
    missing = fault_tools_missing()
    if missing:
        pytest.skip(f"cannot restart the local PostgreSQL and RabbitMQ: {', '.join(missing)}")
    figures = await fault_run(postgres_url, broker_url, Options(
        changes=int(os.environ.get("FAULT_CHANGES", "600")),
        smtp_outage=float(os.environ.get("FAULT_SMTP_OUTAGE", "8")),
        rate=float(os.environ.get("FAULT_RATE", "15")),
    ))
    assert figures.changes_pushed >= int(os.environ.get("FAULT_CHANGES", "600"))
    assert len(figures.faults) == 6, figures.faults
    assert not figures.failures(), figures.report()
