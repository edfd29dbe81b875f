"""Log lines as production writes them (JSON), kept for a test to read."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

import structlog

from asf_kit.logging import configure, tap


class LogLines(logging.Handler):
    """Every log line, rendered as production renders it (JSON)."""

    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@contextlib.contextmanager
def captured_logs(service: str = "test") -> Iterator[list[str]]:
    """Logging configured as in production (JSON, DEBUG), each line also kept here: ours
    (structlog's, through `asf_kit.logging.tap`) and the standard library's (uvicorn,
    FastStream, through a handler)."""
    root = logging.getLogger()
    saved_handlers, saved_level = root.handlers[:], root.level
    configure(service, "test", "DEBUG", "json")
    collector = LogLines()
    collector.setFormatter(root.handlers[0].formatter)
    root.addHandler(collector)
    try:
        with tap(collector.lines.append):
            yield collector.lines
    finally:
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        structlog.reset_defaults()
