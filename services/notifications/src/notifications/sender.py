"""Sending stored deliveries over SMTP, outside any consumer transaction.

The sweeper claims due deliveries (`FOR UPDATE SKIP LOCKED`, so replicas never send the
same one at once), sends each, and records the outcome: `sent`; `retrying` with capped
exponential backoff after a 4xx, a timeout or a dropped connection; `failed` after a 5xx
or too many tries. A delivery left in `sending` by a crash is sent again after
`sending_timeout_seconds`, with the same Message-ID: sending is at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib
import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from asf_kit import telemetry
from asf_kit.logging import bound_contextvars, get_logger
from asf_kit.runtime import Runtime
from notifications import domain, service, store
from notifications.domain import Outcome
from notifications.settings import NotificationsSettings
from notifications.store import Claimed

log = get_logger(__name__)

EMAILS = Counter("notifications_email_attempts_total", "SMTP attempts by outcome", ["outcome"])
DELIVERIES = Gauge("notifications_deliveries", "Deliveries by status", ["status"])
EMAIL_LATENCY = Histogram(
    "notifications_email_delivery_seconds",
    "From the delivery stored (in the transaction that consumed its event) to the SMTP "
    "server accepting the email",
    buckets=(1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 21600),
)
STATUSES = ("pending", "sending", "sent", "retrying", "failed", "skipped")
OLDEST_DUE = Gauge(
    "notifications_oldest_due_delivery_age_seconds",
    "How long the oldest delivery that is due has waited for the sweeper; 0 when none",
)


async def observe_due(pool: asyncpg.Pool) -> None:
    """For a scrape: a sweeper that runs but sends nothing shows as a growing age."""
    async with pool.acquire(timeout=3) as conn:
        due_in = await store.seconds_to_next_due(conn)
    OLDEST_DUE.set(max(0.0, -due_in) if due_in is not None else 0.0)


def build_message(settings: NotificationsSettings, c: Claimed) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = c.recipient
    msg["Subject"] = c.subject
    msg["Message-ID"] = c.message_id
    msg["Date"] = format_datetime(datetime.now(UTC))
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(c.text_body)
    msg.add_alternative(c.html_body, subtype="html")
    return msg


def smtp_target(settings: NotificationsSettings) -> tuple[str, int]:
    """The configured relay, or the built-in mail catcher when none is configured."""
    if settings.smtp_host:
        return settings.smtp_host, settings.smtp_port
    return settings.mailcatcher_host, settings.mailcatcher_port


async def send_email(settings: NotificationsSettings, c: Claimed) -> tuple[Outcome, str | None]:
    """One SMTP conversation; the outcome and, unless sent, why."""
    host, port = smtp_target(settings)
    password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
    try:
        await aiosmtplib.send(
            build_message(settings, c), hostname=host, port=port,
            username=settings.smtp_username, password=password,
            start_tls=settings.smtp_starttls, timeout=settings.smtp_timeout,
        )
    except aiosmtplib.SMTPRecipientsRefused as e:
        first = e.recipients[0] if e.recipients else None
        code = first.code if first else None
        return domain.outcome_for_code(code), f"{code} {first.message if first else e}"[:1000]
    except aiosmtplib.SMTPResponseException as e:
        return domain.outcome_for_code(e.code), f"{e.code} {e.message}"[:1000]
    except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
        return "retry", f"{type(e).__name__}: {e}"[:1000]
    except Exception as e:  # a bug must not leave the delivery in `sending` forever
        log.exception("unexpected error while sending", error_type=type(e).__name__)
        return "retry", f"{type(e).__name__}: {e}"[:1000]
    return "sent", None


class Sweeper:
    """Sends due deliveries until stopped; wakes on NOTIFY `deliveries` or every interval.

    Also starts the daily digest once the local digest hour has come.
    """

    def __init__(self, runtime: Runtime, settings: NotificationsSettings) -> None:
        self._runtime = runtime
        self._settings = settings
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None
        self._last_digest_check: datetime | None = None
        self._observed_at = 0.0

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run(), name="delivery-sweeper")

    async def stop(self, grace_seconds: float = 20.0) -> None:
        """Let the sends in flight finish (up to `grace_seconds`), then stop."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), grace_seconds)
            except (TimeoutError, asyncio.CancelledError):
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await self._task
            self._task = None
        if self._listener is not None:
            with contextlib.suppress(Exception):
                await self._listener.close()
            self._listener = None

    def wake(self) -> None:
        self._wake.set()

    async def _listen(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            return
        try:
            self._listener = await asyncpg.connect(self._settings.database_url)
            await self._listener.add_listener("deliveries", lambda *_: self._wake.set())
        except (OSError, asyncpg.PostgresError) as e:
            self._listener = None
            log.warning("delivery listener unavailable; polling", error=str(e))

    async def _run(self) -> None:
        backoff = 0.2
        while not self._stopping:
            try:
                await self._listen()
                self._wake.clear()
                sent = await self.sweep()
                await self._maybe_digest()
                await self._observe()
                backoff = 0.2
                if sent >= self._settings.sweeper_batch:
                    continue
                await self._sleep()
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("sweep failed; will retry", error=str(e),
                            error_type=type(e).__name__, retry_in=backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 10.0)

    async def _observe(self) -> None:
        """Deliveries by status, for `/metrics`; at most every few seconds."""
        now = time.monotonic()
        if now - self._observed_at < 5:
            return
        self._observed_at = now
        async with self._runtime.pool.acquire() as conn:
            counts = await store.count_by_status(conn)
        for status in STATUSES:
            DELIVERIES.labels(status).set(counts.get(status, 0))

    async def _sleep(self) -> None:
        wait = self._settings.sweeper_interval
        async with self._runtime.pool.acquire() as conn:
            due_in = await store.seconds_to_next_due(conn)
        if due_in is not None:
            wait = min(wait, max(due_in, 0.05))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), wait)

    async def sweep(self) -> int:
        """Claim one batch and send it; returns how many were claimed."""
        s = self._settings
        async with self._runtime.pool.acquire() as conn:
            claimed = await store.claim_due(
                conn, s.sweeper_batch, timedelta(seconds=s.sending_timeout_seconds)
            )
        if not claimed:
            return 0
        limit = asyncio.Semaphore(s.send_concurrency)

        async def one(c: Claimed) -> None:
            async with limit:
                await self._send(c)

        await asyncio.gather(*(one(c) for c in claimed))
        return len(claimed)

    async def _send(self, c: Claimed) -> None:
        s = self._settings
        with bound_contextvars(delivery_id=str(c.id), attempt=c.attempts), telemetry.span(
            "smtp send", traceparent=c.traceparent, kind=telemetry.SpanKind.CLIENT,
            attributes={"delivery.id": str(c.id), "delivery.attempt": c.attempts},
        ) as span:
            outcome, error = await send_email(s, c)
            status, retry_in = domain.after_attempt(
                outcome, c.attempts, s.max_attempts, s.retry_base_seconds, s.retry_cap_seconds)
            if status == "failed" and outcome == "retry":
                error = f"gave up after {c.attempts} attempts; last: {error}"
            span.set_attribute("delivery.status", status)
            EMAILS.labels(status).inc()
            async with self._runtime.pool.acquire() as conn:
                recorded = await store.finish_attempt(conn, c, status, error, retry_in)
            if status == "sent":
                EMAIL_LATENCY.observe((datetime.now(UTC) - c.created_at).total_seconds())
                log.info("email sent", recorded=recorded)
            else:
                log.warning("email not sent", status=status, error=error,
                            retry_in=retry_in.total_seconds() if retry_in else None)

    async def _maybe_digest(self) -> None:
        s = self._settings
        at = datetime.now(UTC)
        if not s.digest_enabled or (
            self._last_digest_check and at - self._last_digest_check < timedelta(minutes=1)
        ):
            return
        self._last_digest_check = at
        made = await service.run_due_digest(self._runtime.pool, at, s.timezone, s.digest_hour,
                                            s.frontend_base_url)
        if made:
            log.info("daily digest stored", deliveries=len(made))
