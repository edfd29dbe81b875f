"""Sending stored deliveries over SMTP, outside any consumer transaction.

The sweeper claims a batch of due deliveries (`FOR UPDATE SKIP LOCKED`, so replicas never
send the same one at once) and sends the batch over one SMTP connection, recording each
outcome as it comes: `sent`; `retrying` with capped exponential backoff after a 4xx, a
timeout or a dropped connection; `failed` after a 5xx or too many tries. A connection that
drops is opened again for the next email of the batch; when opening it fails, or the
server stops answering, the rest of the batch waits for its retry. A delivery left in
`sending` by a crash is sent again after `sending_timeout_seconds`, with the same
Message-ID: sending is at least once.
"""

from __future__ import annotations

import contextlib
import time
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from types import TracebackType

import aiosmtplib
import asyncpg
from prometheus_client import Counter, Gauge, Histogram

from asf_kit import telemetry
from asf_kit.logging import bound_contextvars, get_logger
from asf_kit.runtime import Runtime
from asf_kit.worker import Worker
from notifications import domain, store
from notifications.domain import Outcome
from notifications.service import Notifications
from notifications.settings import NotificationsSettings, SmtpTls
from notifications.store import Claimed

log = get_logger(__name__)

EMAILS = Counter("notifications_email_attempts_total", "SMTP attempts by outcome", ["outcome"])
CONNECTIONS = Counter("notifications_smtp_connections_total", "SMTP connections opened",
                      ["outcome"])
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


def smtp_target(settings: NotificationsSettings) -> tuple[str, int, SmtpTls]:
    """The configured relay, or the built-in mail catcher (plain, on this machine) when none
    is configured."""
    if settings.smtp_host:
        return settings.smtp_host, settings.smtp_port, settings.smtp_tls
    return settings.mailcatcher_host, settings.mailcatcher_port, "none"


class Mailer:
    """One SMTP connection for one batch: opened for the first email, used for the next,
    opened again after it drops. After a connection cannot be opened, or a command timed
    out, the rest of the batch is not tried (each one waits for its retry)."""

    def __init__(self, settings: NotificationsSettings) -> None:
        self._settings = settings
        self._smtp: aiosmtplib.SMTP | None = None
        self._gave_up: str | None = None
        self.connections = 0

    async def __aenter__(self) -> Mailer:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._close(polite=True)

    def _client(self) -> aiosmtplib.SMTP:
        s = self._settings
        host, port, tls = smtp_target(s)
        password = s.smtp_password.get_secret_value() if s.smtp_password else None
        return aiosmtplib.SMTP(
            hostname=host, port=port, username=s.smtp_username if s.smtp_host else None,
            password=password if s.smtp_host else None, timeout=s.smtp_timeout,
            use_tls=tls == "tls", start_tls=tls == "starttls",
            cert_bundle=s.smtp_ca_file if tls != "none" else None,
        )

    async def _connection(self) -> aiosmtplib.SMTP:
        if self._smtp is not None and self._smtp.is_connected:
            return self._smtp
        await self._close(polite=False)
        smtp = self._client()
        try:
            await smtp.connect()
        except BaseException:
            CONNECTIONS.labels("failed").inc()
            smtp.close()
            raise
        CONNECTIONS.labels("opened").inc()
        self.connections += 1
        self._smtp = smtp
        return smtp

    async def _close(self, *, polite: bool) -> None:
        smtp, self._smtp = self._smtp, None
        if smtp is None:
            return
        if polite and smtp.is_connected:
            with contextlib.suppress(Exception):
                await smtp.quit()
        smtp.close()

    async def _forget_if_closed(self, smtp: aiosmtplib.SMTP) -> None:
        """After a refusal the connection stays, unless the server closed it (421)."""
        if not smtp.is_connected:
            await self._close(polite=False)

    async def send(self, msg: EmailMessage) -> tuple[Outcome, str | None]:
        """Send one email on the batch's connection; the outcome and, unless sent, why."""
        if self._gave_up is not None:
            return "retry", f"not tried: {self._gave_up}"
        try:
            smtp = await self._connection()
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            self._gave_up = f"the SMTP connection could not be opened: {_reason(e)}"
            return "retry", self._gave_up[:1000]
        try:
            await smtp.send_message(msg)
        except aiosmtplib.SMTPRecipientsRefused as e:
            first = e.recipients[0] if e.recipients else None
            code = first.code if first else None
            await self._forget_if_closed(smtp)
            return domain.outcome_for_code(code), f"{code} {first.message if first else e}"[:1000]
        except aiosmtplib.SMTPResponseException as e:
            await self._forget_if_closed(smtp)
            return domain.outcome_for_code(e.code), f"{e.code} {e.message}"[:1000]
        except (aiosmtplib.SMTPTimeoutError, TimeoutError) as e:
            self._gave_up = f"the SMTP server stopped answering: {_reason(e)}"
            await self._close(polite=False)
            return "retry", _reason(e)
        except (aiosmtplib.SMTPException, OSError) as e:  # dropped: reconnect for the next
            await self._close(polite=False)
            return "retry", _reason(e)
        except Exception as e:  # a bug must not leave the delivery in `sending` forever
            log.exception("unexpected error while sending", error_type=type(e).__name__)
            await self._close(polite=False)
            return "retry", _reason(e)
        return "sent", None


def _reason(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"[:1000]


class Sweeper(Worker):
    """Sends due deliveries until stopped: a kit worker woken by NOTIFY `deliveries` (a new
    or retried delivery) or at the next retry, at most every `sweeper_interval`.

    Also starts the daily digest once the local digest hour has come. A round that fails is
    counted (`worker_failures_total{worker="delivery-sweeper"}`), drops the LISTEN
    connection and backs off, as every kit worker does.
    """

    def __init__(
        self, runtime: Runtime, settings: NotificationsSettings, notifications: Notifications
    ) -> None:
        super().__init__("delivery-sweeper", dsn=settings.database_url, channel="deliveries",
                         interval=settings.sweeper_interval)
        self._runtime = runtime
        self._settings = settings
        self._notifications = notifications
        self._last_digest_check: datetime | None = None
        self._observed_at = 0.0

    async def stop(self, grace: float = 20.0) -> None:
        """Let the batch in flight finish (up to `grace` seconds), then stop."""
        await super().stop(grace)

    async def round(self) -> bool:
        """Send one batch, start the digest when it is due, update the gauges; True when the
        batch was full (there may be more at once)."""
        claimed = await self.sweep()
        await self._maybe_digest()
        await self._observe()
        return claimed >= self._settings.sweeper_batch

    async def seconds_to_wait(self) -> float:
        """Until the next retry falls due, at most `sweeper_interval`."""
        wait = self._settings.sweeper_interval
        async with self._runtime.pool.acquire() as conn:
            due_in = await store.seconds_to_next_due(conn)
        return wait if due_in is None else min(wait, max(due_in, 0.05))

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

    async def sweep(self) -> int:
        """Claim one batch and send it over one SMTP connection; returns how many were
        claimed. Each outcome is recorded as soon as it is known."""
        s = self._settings
        async with self._runtime.pool.acquire() as conn:
            claimed = await store.claim_due(
                conn, s.sweeper_batch, timedelta(seconds=s.sending_timeout_seconds)
            )
        if not claimed:
            return 0
        async with Mailer(s) as mailer:
            for c in claimed:
                await self._send(mailer, c)
        return len(claimed)

    async def _send(self, mailer: Mailer, c: Claimed) -> None:
        s = self._settings
        with bound_contextvars(delivery_id=str(c.id), attempt=c.attempts), telemetry.span(
            "smtp send", traceparent=c.traceparent, kind=telemetry.SpanKind.CLIENT,
            attributes={"delivery.id": str(c.id), "delivery.attempt": c.attempts},
        ) as span:
            outcome: Outcome
            error: str | None
            try:
                msg = build_message(s, c)
            except (ValueError, TypeError) as e:  # e.g. an address the email library refuses
                outcome, error = "fail", f"the email could not be built: {_reason(e)}"
            else:
                outcome, error = await mailer.send(msg)
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
        at = datetime.now(UTC)
        if not self._settings.digest_enabled or (
            self._last_digest_check and at - self._last_digest_check < timedelta(minutes=1)
        ):
            return
        self._last_digest_check = at
        made = await self._notifications.run_due_digest(at)
        if made:
            log.info("daily digest stored", deliveries=len(made))
