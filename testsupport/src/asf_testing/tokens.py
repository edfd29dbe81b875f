"""Tokens and keys for tests: development tokens signed with the tests' secret, and an
identity provider of the test's own (an ES256 key, its tokens, its JWKS over real HTTP)."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from asf_kit.auth import mint_token

JWT_TEST_SECRET = "test-secret-that-is-long-enough-for-hs256-0123456789"
"""What every test service signs and verifies development tokens with."""

DATA_KEY = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
"""The tests' casework master key (`CASEWORK_DATA_KEY`): base64 of the bytes 0..31."""


def token(roles: list[str] | str, sub: str = "user-1", **claims: Any) -> str:
    """A valid test token; `claims` may set municipality_code, company_id, name."""
    return mint_token(JWT_TEST_SECRET, sub, [roles] if isinstance(roles, str) else roles,
                      **claims)


def auth(roles: list[str] | str, sub: str = "user-1", **claims: Any) -> dict[str, str]:
    """`Authorization` headers with a valid test token."""
    return {"Authorization": f"Bearer {token(roles, sub, **claims)}"}


class SigningKey:
    """An ES256 key pair made by the test, with the tokens it signs and its public JWK."""

    def __init__(self, kid: str | None = None) -> None:
        self.kid = kid or f"k-{uuid.uuid4().hex[:8]}"
        self.private = ec.generate_private_key(ec.SECP256R1())

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(
            self.private.public_key()))
        public.update(kid=self.kid, use="sig", alg="ES256")
        return public

    def token(self, sub: str = "user-1", roles: list[str] | str = "analyst", *,
              lifetime: float = 3600, kid: str | None = None, **claims: Any) -> str:
        """A signed token; `claims` override or add (`iat=None` leaves `iat` out)."""
        now = int(time.time())
        body: dict[str, Any] = {"sub": sub, "roles": [roles] if isinstance(roles, str)
                                else roles, "iat": now, "exp": now + int(lifetime)}
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, self.private, algorithm="ES256",
                          headers={"kid": kid or self.kid})

    def jwks_file(self, folder: Path) -> Path:
        path = folder / f"jwks-{self.kid}.json"
        path.write_text(json.dumps({"keys": [self.jwk()]}), encoding="utf-8")
        return path


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a slow answer is what the tests do


class JwksServer:
    """A JWKS over real HTTP on a free port, in a thread of its own, so a slow answer here
    is slow for the service and not for the test's event loop. `delay` slows every answer;
    `keys` may change (rotation); `down()` closes the port; `requests` counts fetches."""

    def __init__(self, *keys: SigningKey) -> None:
        self.keys = list(keys)
        self.delay = 0.0
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.requests += 1
                time.sleep(server.delay)
                body = json.dumps({"keys": [k.jwk() for k in server.keys]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._httpd.server_address[1]}/.well-known/jwks.json"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,),
                                        daemon=True)
        self._thread.start()

    def down(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> JwksServer:
        return self

    def __exit__(self, *_: object) -> None:
        self.down()
