"""The callers of an access matrix and the answers each expects (`tests/access`)."""

from __future__ import annotations

from typing import Any

ANONYMOUS = "anonymous"
VARIANTS = (ANONYMOUS, "case_worker", "case_worker_other", "registry_officer", "company_rep",
            "company_rep_other", "analyst", "auditor")
"""Who calls: each role, and for scoped roles their own vs another municipality or company."""


def allow(status: int, *variants: str, others: int = 403) -> dict[str, int]:
    """The expected answer per caller: `status` for `variants`, `others` for the rest of the
    signed-in callers, 401 without a token."""
    unknown = set(variants) - set(VARIANTS)
    assert not unknown, unknown
    return {v: 401 if v == ANONYMOUS else status if v in variants else others for v in VARIANTS}


def public(status: int = 200) -> dict[str, int]:
    return dict.fromkeys(VARIANTS, status)


def everyone(status: int) -> dict[str, int]:
    return allow(status, *[v for v in VARIANTS if v != ANONYMOUS])


def api_routes(app: Any) -> set[tuple[str, str]]:
    """Every (method, path) the app serves, from its routing table."""
    from fastapi.routing import APIRoute
    from starlette.routing import Route

    found: set[tuple[str, str]] = set()

    def walk(routes: list[Any], prefix: str) -> None:
        for route in routes:
            included = getattr(route, "original_router", None)
            if included is not None:  # FastAPI keeps included routers as their own node
                walk(included.routes, prefix + route.include_context.prefix)
            elif isinstance(route, APIRoute | Route) and route.methods:
                for method in route.methods - {"HEAD", "OPTIONS"}:
                    found.add((method, prefix + route.path))

    walk(app.routes, "")
    return found
