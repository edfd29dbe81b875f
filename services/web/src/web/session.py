"""The session: one encrypted, HttpOnly cookie and nothing on the server.

The cookie holds the signed-in person's token, what the pages need to know about them
(name, roles, municipality, company), the CSRF token and Authlib's sign-in state. It is
sealed with AES-GCM under a key derived from `SESSION_SECRET`, so the browser can neither
read nor change it, and the token never reaches its JavaScript.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import time
import zlib
from typing import Any

import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from starlette.datastructures import MutableHeaders
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from asf_kit.logging import get_logger

log = get_logger(__name__)

COOKIE = "asf_session"
MAX_COOKIE_BYTES = 4000


class Sealer:
    """AES-GCM with a random nonce; the cookie name is bound as associated data."""

    def __init__(self, secret: bytes) -> None:
        self._aead = AESGCM(hashlib.sha256(b"asf-web-session\x00" + secret).digest())

    def seal(self, data: dict[str, Any]) -> str:
        nonce = secrets.token_bytes(12)
        sealed = self._aead.encrypt(nonce, zlib.compress(orjson.dumps(data)), COOKIE.encode())
        return base64.urlsafe_b64encode(nonce + sealed).decode().rstrip("=")

    def open(self, value: str) -> dict[str, Any] | None:
        try:
            raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
            plain = self._aead.decrypt(raw[:12], raw[12:], COOKIE.encode())
            data = orjson.loads(zlib.decompress(plain))
        except (ValueError, InvalidTag, zlib.error, orjson.JSONDecodeError):
            return None
        return data if isinstance(data, dict) else None


class SessionMiddleware:
    """Puts the opened cookie in `scope["session"]` (what Starlette and Authlib expect) and
    writes it back only when a request changed it."""

    def __init__(self, app: ASGIApp, secret: bytes, *, max_age: int, secure: bool) -> None:
        self.app = app
        self.sealer = Sealer(secret)
        self.max_age = max_age
        self.secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        connection = HTTPConnection(scope)
        data: dict[str, Any] = {}
        had_cookie = COOKIE in connection.cookies
        if had_cookie:
            opened = self.sealer.open(connection.cookies[COOKIE])
            if opened is not None and opened.get("_exp", 0) > time.time():
                data = opened
        before = orjson.dumps(data, option=orjson.OPT_SORT_KEYS)
        scope["session"] = data

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start":
                session: dict[str, Any] = scope["session"]
                changed = orjson.dumps(session, option=orjson.OPT_SORT_KEYS) != before
                headers = MutableHeaders(scope=message)
                if session and changed:
                    session.setdefault("_exp", int(time.time()) + self.max_age)
                    value = self.sealer.seal(session)
                    if len(value) > MAX_COOKIE_BYTES:
                        log.warning("session cookie too large; tokens may be too big",
                                    bytes=len(value))
                    headers.append("Set-Cookie", self._cookie(value, self.max_age))
                elif not session and had_cookie:
                    headers.append("Set-Cookie", self._cookie("", 0))
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    def _cookie(self, value: str, max_age: int) -> str:
        parts = [f"{COOKIE}={value}", "Path=/", f"Max-Age={max_age}", "HttpOnly",
                 "SameSite=Lax"]
        if self.secure:
            parts.append("Secure")
        return "; ".join(parts)
