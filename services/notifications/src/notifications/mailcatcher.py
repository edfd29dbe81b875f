"""A built-in SMTP server for development: each email it receives becomes a `.eml` file.

Started by the service when no `SMTP_HOST` is set, or alone with
`notifications mailcatcher`; `notifications mail list` and `GET /mailcatcher` show
what it caught.
"""

from __future__ import annotations

import time
import uuid
from datetime import datetime
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from pydantic import BaseModel

from asf_kit.logging import get_logger

log = get_logger(__name__)


class EmlWriter:
    """An aiosmtpd handler that writes each message it accepts into `folder`."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        content = envelope.original_content or envelope.content
        data = content if isinstance(content, bytes) else str(content).encode()
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}.eml"
        recipients = ", ".join(envelope.rcpt_tos)
        header = f"X-Envelope-To: {recipients}\r\n".encode()
        (self.folder / name).write_bytes(header + data)
        return "250 Message accepted for delivery"


def start(folder: Path, host: str, port: int) -> Controller:
    """Start the catcher in its own thread; stop it with `.stop()`."""
    controller = Controller(EmlWriter(folder), hostname=host, port=port)
    controller.start()
    log.info("mail catcher listening", host=host, port=port, folder=str(folder))
    return controller


class CaughtMail(BaseModel):
    file: str
    received_at: datetime
    to: str
    subject: str
    message_id: str | None


def caught(folder: Path, limit: int = 200) -> list[CaughtMail]:
    """The newest caught emails first: who they went to and what they were about."""
    if not folder.exists():
        return []
    files = sorted(folder.glob("*.eml"), reverse=True)[:limit]
    parser = BytesParser(policy=policy.default)
    out = []
    for path in files:
        with path.open("rb") as f:
            msg = parser.parse(f, headersonly=True)
        out.append(CaughtMail(
            file=path.name,
            received_at=datetime.fromtimestamp(path.stat().st_mtime).astimezone(),
            to=str(msg.get("X-Envelope-To") or msg.get("To") or ""),
            subject=str(msg.get("Subject") or ""),
            message_id=str(msg["Message-ID"]) if msg["Message-ID"] else None,
        ))
    return out
