"""The registry's rate limit seen through the web app: each visitor counts on their own (the
web app forwards the visitor's address), and a visitor past the limit gets a page saying how
long to wait, with `Retry-After`, never an error page. A real registry process with a limit
of three requests a minute; the web app in this process, reached from two addresses."""

from __future__ import annotations

import httpx

from asf_testing import JWT_TEST_SECRET, free_port, fresh_database, unique_namespace
from web.app import create_app
from web.routes import public
from web.settings import WebSettings

from .stack import ROOT, service_process


def _visitor(app: object, address: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app,  # type: ignore[arg-type]
                                                           client=(address, 50000)),
                             base_url="http://web", timeout=30)


async def test_each_visitor_has_their_own_rate_limit(postgres_url: str, broker_url: str,
                                                     tmp_path: object) -> None:
    from pathlib import Path

    logs = Path(str(tmp_path))
    async with (
        fresh_database(postgres_url, "web_public_limit",
                       ROOT / "services/registry/migrations") as db,
        service_process("registry.cli", {
            "DATABASE_URL": db, "BROKER_URL": broker_url, "QUEUE_NAMESPACE": unique_namespace(),
            "PUBLIC_RATE_LIMIT": "3", "PUBLIC_RATE_WINDOW": "60"},
            logs / "registry.log") as registry,
    ):
        down = f"http://127.0.0.1:{free_port()}"
        app = create_app(WebSettings(
            app_env="development", jwt_secret=JWT_TEST_SECRET,
            session_secret="public-limits-session-secret-0123456789",
            registry_url=registry.base_url, casework_url=down, notifications_url=down))
        # Nothing kept from before: the first visit makes all three of its calls.
        public._MUNICIPALITIES.clear()
        public._shared.clear()
        try:
            async with _visitor(app, "203.0.113.7") as first, \
                    _visitor(app, "198.51.100.9") as second:
                # The first visit: municipalities, companies, counties (3 of 3).
                r = await first.get("/register")
                assert r.status_code == 200, r.text[:500]
                # The fourth request from the same address is one too many.
                r = await first.get("/register?q=a")
                assert r.status_code == 429
                assert 0 < int(r.headers["retry-after"]) <= 60
                assert "För många förfrågningar just nu" in r.text
                assert f"Vänta {r.headers['retry-after']} sekunder" in r.text
                r = await first.get("/open-data/asf-register.csv")
                assert r.status_code == 429 and r.headers["retry-after"]
                # Another visitor is not held back by the first one.
                r = await second.get("/register")
                assert r.status_code == 200, r.text[:500]
                assert "Registret i siffror" in r.text
                r = await second.get("/open-data/asf-register.csv")
                assert r.status_code == 200
                assert r.text.startswith("id,org_number,name,")
        finally:
            await app.state.apis.aclose()
