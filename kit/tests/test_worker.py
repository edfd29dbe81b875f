"""The kit's worker base against a real PostgreSQL: woken by NOTIFY, polls without it, backs
off and counts failures, re-opens a lost LISTEN connection, stops after the round in
progress."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg
import pytest
from prometheus_client import REGISTRY

from asf_kit.worker import BACKOFF, Backoff, Worker


class Recording(Worker):
    """Counts its rounds; can be told to fail or to take its time."""

    def __init__(self, dsn: str | None, channel: str | None, **kw: float) -> None:
        super().__init__(f"test-{uuid.uuid4().hex[:6]}", dsn=dsn, channel=channel, **kw)
        self.rounds = 0
        self.finished = 0
        self.fail_next = 0
        self.round_takes = 0.0
        self.more = 0
        self.ran = asyncio.Event()

    async def round(self) -> bool:
        self.rounds += 1
        self.ran.set()
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("the database went away")
        await asyncio.sleep(self.round_takes)
        self.finished += 1
        if self.more:
            self.more -= 1
            return True
        return False

    async def next_round(self, within: float = 5.0) -> None:
        self.ran.clear()
        await asyncio.wait_for(self.ran.wait(), within)


def failures(name: str) -> float:
    return REGISTRY.get_sample_value("worker_failures_total", {"worker": name}) or 0.0


def channel() -> str:
    return f"worker_test_{uuid.uuid4().hex[:8]}"


async def notify(dsn: str, name: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("SELECT pg_notify($1, '')", name)
    finally:
        await conn.close()


async def wait_listening(worker: Worker, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not worker.listening:
        assert asyncio.get_running_loop().time() < deadline, "the worker never listened"
        await asyncio.sleep(0.02)


def test_one_backoff_policy_doubles_up_to_its_cap() -> None:
    assert [BACKOFF.after(n) for n in (1, 2, 3)] == [0.2, 0.4, 0.8]
    assert BACKOFF.after(50) == 10.0
    assert Backoff(first=1, cap=3).after(5) == 3


async def test_a_notify_wakes_the_worker_long_before_its_poll(postgres_url: str) -> None:
    name = channel()
    worker = Recording(postgres_url, name, interval=60)
    await worker.start()
    try:
        await worker.next_round()  # the first round runs at start
        await wait_listening(worker)
        started = asyncio.get_running_loop().time()
        waiting = asyncio.create_task(worker.next_round(within=10))
        await asyncio.sleep(0)
        await notify(postgres_url, name)
        await waiting
        assert asyncio.get_running_loop().time() - started < 5  # not the 60 s poll
    finally:
        await worker.stop()
    assert not worker.running and not worker.listening


async def test_without_a_channel_it_polls_and_a_full_batch_runs_again_at_once() -> None:
    worker = Recording(None, None, interval=0.05)
    worker.more = 3
    await worker.start()
    try:
        deadline = asyncio.get_running_loop().time() + 5
        while worker.finished < 6:  # 1 + 3 at once, then polls
            assert asyncio.get_running_loop().time() < deadline
            await asyncio.sleep(0.02)
    finally:
        await worker.stop()
    assert not worker.listening


async def test_a_failed_round_is_counted_backed_off_and_the_listener_reopened(
    postgres_url: str,
) -> None:
    name = channel()
    worker = Recording(postgres_url, name, interval=60)
    worker.fail_next = 2
    await worker.start()
    try:
        await worker.next_round()  # fails
        await worker.next_round()  # fails again, after the first pause
        await worker.next_round()  # succeeds after the second pause
        assert worker.failures == 0 and worker.finished == 1
        assert failures(worker.name) == 2
        # The listener was dropped on failure and is open again: a NOTIFY still wakes it.
        await wait_listening(worker)
        waiting = asyncio.create_task(worker.next_round(within=10))
        await asyncio.sleep(0)
        await notify(postgres_url, name)
        await waiting
    finally:
        await worker.stop()


async def test_a_listener_killed_by_the_server_is_reopened(postgres_url: str) -> None:
    name = channel()
    worker = Recording(postgres_url, name, interval=60)
    await worker.start()
    try:
        await wait_listening(worker)
        assert worker._listener is not None
        pid = worker._listener.get_server_pid()
        admin = await asyncpg.connect(postgres_url)
        try:
            await admin.execute("SELECT pg_terminate_backend($1)", pid)
        finally:
            await admin.close()
        deadline = asyncio.get_running_loop().time() + 10
        while worker._listener is None or worker._listener.get_server_pid() == pid \
                or not worker.listening:
            assert asyncio.get_running_loop().time() < deadline, "never re-opened"
            await asyncio.sleep(0.05)
        waiting = asyncio.create_task(worker.next_round(within=10))
        await asyncio.sleep(0)
        await notify(postgres_url, name)
        await waiting
    finally:
        await worker.stop()


async def test_stop_lets_the_round_in_progress_finish() -> None:
    worker = Recording(None, None, interval=60)
    worker.round_takes = 0.5
    await worker.start()
    await worker.next_round()
    await worker.stop(grace=10)
    assert worker.finished == 1
    assert not worker.running


async def test_stop_cancels_a_round_that_outlives_the_grace() -> None:
    worker = Recording(None, None, interval=60)
    worker.round_takes = 30
    await worker.start()
    await worker.next_round()
    started = asyncio.get_running_loop().time()
    await worker.stop(grace=0.2)
    assert asyncio.get_running_loop().time() - started < 5
    assert worker.finished == 0 and not worker.running


async def test_the_first_round_can_wait() -> None:
    worker = Recording(None, None, interval=60, first_round_after=60)
    await worker.start()
    try:
        await asyncio.sleep(0.2)
        assert worker.rounds == 0
        worker.wake()  # a wake-up (or a NOTIFY) still runs it early
        await worker.next_round()
    finally:
        await worker.stop()


def test_a_listening_worker_needs_a_dsn() -> None:
    with pytest.raises(ValueError, match="dsn"):
        Worker("x", channel="outbox")
