"""A real SMTP server for tests, in the test's own process (aiosmtpd on a free port).

It records what it accepts and over which connection, refuses the recipients it is told to
(451 or 550), drops the connection at the ones it is told to (421), can speak STARTTLS or
TLS from the first byte with a certificate it is given, and can be taken down and brought
back:

    smtp = SmtpServer(); smtp.up()
    create_app(NotificationsSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, ...))
"""

from __future__ import annotations

import asyncio
import ssl
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, Literal

from aiosmtpd.controller import Controller

from asf_testing.processes import free_port


def text_of(msg: EmailMessage) -> str:
    """Subject and every text part of an email."""
    parts = [str(msg["Subject"])]
    parts += [str(p.get_content()) for p in msg.walk()
              if p.get_content_type() in ("text/plain", "text/html")]
    return "\n".join(parts)


@dataclass(frozen=True)
class Received:
    """One accepted email, the connection it came over, and whether that was encrypted."""

    message: EmailMessage
    connection: int
    """Counts connections from 1, in the order they delivered their first email."""
    tls: bool


class Recorder:
    """An aiosmtpd handler that keeps what it accepts and refuses whom it is told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.received: list[Received] = []
        self.reject: set[str] = set()
        """Recipients answered with 550 (refused for good)."""
        self.tempfail: set[str] = set()
        """Recipients answered with 451 (try again later)."""
        self.disconnect: set[str] = set()
        """Recipients answered with 421, and the connection closed."""
        self._connections: list[Any] = []  # kept, so that no two share an id()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 mailbox unavailable"
        if address in self.tempfail:
            return "451 4.3.0 try again later"
        if address in self.disconnect:
            # Closed once the reply is written (a transport flushes what it holds first).
            asyncio.get_running_loop().call_soon(server.transport.close)
            return "421 4.3.2 closing the connection"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content,
                                 policy=policy.default)
        assert isinstance(msg, EmailMessage)
        if not any(c is server for c in self._connections):
            self._connections.append(server)
        number = next(i for i, c in enumerate(self._connections, 1) if c is server)
        tls = server.transport.get_extra_info("ssl_object") is not None
        self.received.append(Received(msg, number, tls))
        self.messages.append(msg)
        return "250 OK"


class SmtpServer:
    """A real SMTP server on a free port; `down()` and `up()` take it away and back.

    With `tls="starttls"` it offers STARTTLS and requires it before MAIL; with `tls="tls"`
    it speaks TLS from the first byte. Both need `certificate` (certificate file, key file).
    """

    def __init__(
        self, port: int | None = None, *, tls: Literal["none", "starttls", "tls"] = "none",
        certificate: tuple[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.handler = Recorder()
        self.tls = tls
        self._context: ssl.SSLContext | None = None
        if tls != "none":
            assert certificate is not None, "a TLS server needs a certificate"
            self._context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            self._context.load_cert_chain(*certificate)
        self._controller: Controller | None = None

    def up(self) -> None:
        if self._controller is None:
            options: dict[str, Any] = {}
            if self.tls == "starttls":
                options = {"tls_context": self._context, "require_starttls": True}
            elif self.tls == "tls":
                options = {"ssl_context": self._context}
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                          **options)
            self._controller.start()

    def down(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def to(self, address: str, about: str = "") -> list[EmailMessage]:
        """Emails to `address` whose subject, body or Message-ID mention `about`.

        Other test runs may publish to the same broker at the same time, so a test looks
        only at the emails about its own events.
        """
        return [m for m in self.handler.messages
                if address in str(m["To"]) and about in f"{m['Message-ID']} {text_of(m)}"]

    def connections_of(self, messages: list[EmailMessage]) -> set[int]:
        """The connections `messages` came over."""
        wanted = [id(m) for m in messages]
        return {r.connection for r in self.handler.received if id(r.message) in wanted}

    @property
    def disconnect(self) -> set[str]:
        return self.handler.disconnect

    @property
    def reject(self) -> set[str]:
        return self.handler.reject

    @property
    def tempfail(self) -> set[str]:
        return self.handler.tempfail
