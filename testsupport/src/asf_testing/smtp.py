"""A real SMTP server for tests, in the test's own process (aiosmtpd on a free port).

It records what it accepts, refuses the recipients it is told to (451 or 550), and can be
taken down and brought back:

    smtp = SmtpServer(); smtp.up()
    create_app(NotificationsSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, ...))
"""

from __future__ import annotations

from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from asf_testing.processes import free_port


def text_of(msg: EmailMessage) -> str:
    """Subject and every text part of an email."""
    parts = [str(msg["Subject"])]
    parts += [str(p.get_content()) for p in msg.walk()
              if p.get_content_type() in ("text/plain", "text/html")]
    return "\n".join(parts)


class Recorder:
    """An aiosmtpd handler that keeps what it accepts and refuses whom it is told to."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.reject: set[str] = set()
        """Recipients answered with 550 (refused for good)."""
        self.tempfail: set[str] = set()
        """Recipients answered with 451 (try again later)."""

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if address in self.reject:
            return "550 5.1.1 mailbox unavailable"
        if address in self.tempfail:
            return "451 4.3.0 try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = message_from_bytes(envelope.original_content or envelope.content,
                                 policy=policy.default)
        assert isinstance(msg, EmailMessage)
        self.messages.append(msg)
        return "250 OK"


class SmtpServer:
    """A real SMTP server on a free port; `down()` and `up()` take it away and back."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.handler = Recorder()
        self._controller: Controller | None = None

    def up(self) -> None:
        if self._controller is None:
            self._controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
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

    @property
    def reject(self) -> set[str]:
        return self.handler.reject

    @property
    def tempfail(self) -> set[str]:
        return self.handler.tempfail
