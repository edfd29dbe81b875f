"""Errors as RFC 9457 problem details, with the field named on a 422."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from pydantic import ValidationError as PydanticValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from asf_kit.logging import get_logger
from asf_kit.rules import RuleError

log = get_logger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class ProblemDetail(BaseModel):
    """What every error response looks like."""

    type: str
    title: str
    status: int
    detail: str | None = None
    errors: list[FieldError] | None = None


class Problem(Exception):
    """An error the caller can act on. Raise it anywhere below a route."""

    def __init__(
        self,
        status: int,
        title: str,
        detail: str | None = None,
        *,
        slug: str | None = None,
        errors: Sequence[FieldError] | None = None,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title)
        self.status = status
        self.title = title
        self.detail = detail
        self.slug = slug or title.lower().replace(" ", "-")
        self.errors = list(errors) if errors is not None else None
        self.headers = headers
        self.extra = extra

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"/problems/{self.slug}",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = [e.model_dump() for e in self.errors]
        body.update(self.extra)
        return body


def invalid(field: str, message: str) -> Problem:
    """A 422 naming one field."""
    return Problem(
        422, "Validation failed", f"{field}: {message}", slug="validation",
        errors=[FieldError(field=field, message=message)],
    )


def rule_problem(e: RuleError) -> Problem:
    """The problem document of a broken domain rule, with what it says the caller can do."""
    extra: dict[str, Any] = dict(e.extra)
    errors = extra.pop("errors", None)
    # every 422 is the same type of problem, however it was found
    slug = "validation" if e.status == 422 else e.title.lower().replace(" ", "-")
    return Problem(
        e.status, e.title, e.detail, slug=slug,
        errors=[FieldError(**x) for x in errors] if isinstance(errors, list) else None,
        **extra,
    )


def not_found(what: str) -> Problem:
    return Problem(404, "Not found", f"{what} not found", slug="not-found")


def forbidden(detail: str) -> Problem:
    return Problem(403, "Forbidden", detail, slug="forbidden")


def field_path(loc: Sequence[int | str]) -> str:
    """`("body", "contacts", 0, "email")` → `contacts[0].email`."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path", "header"):
        parts = parts[1:]
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p in ("function-after", "function-before", "function-wrap") or "[" in str(p):
            continue  # pydantic's validator and union-member labels are not fields
        else:
            out += f".{p}" if out else str(p)
    return out or "body"


def field_errors(errors: Sequence[Any]) -> list[FieldError]:
    result = []
    for e in errors:
        msg = str(e.get("msg", "invalid"))
        msg = msg.removeprefix("Value error, ")
        result.append(FieldError(field=field_path(e.get("loc", ())), message=msg))
    return result


def validation_problem(errors: Sequence[Any], prefix: str = "") -> Problem:
    fields = field_errors(errors)
    if prefix:
        fields = [FieldError(field=f"{prefix}{f.field}", message=f.message) for f in fields]
    detail = "; ".join(f"{f.field}: {f.message}" for f in fields)
    return Problem(422, "Validation failed", detail, slug="validation", errors=fields)


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        problem.body(), status_code=problem.status, media_type=PROBLEM_JSON,
        headers=problem.headers,
    )


_TITLES = {
    400: "Bad request", 401: "Unauthorized", 403: "Forbidden", 404: "Not found",
    405: "Method not allowed", 406: "Not acceptable", 409: "Conflict", 412: "Precondition failed",
    413: "Content too large", 415: "Unsupported media type", 428: "Precondition required",
}


def _documented(request: Request) -> list[tuple[str, set[str]]]:
    """Each path of the app's OpenAPI document with its methods (FastAPI keeps included
    routers as routers: the document is the flat list)."""
    paths = request.app.openapi().get("paths", {})
    return [(p, {m.upper() for m in ops}) for p, ops in paths.items()]


def allowed_methods(request: Request) -> str:
    """Every method the app answers at this path (Starlette's own 405 names only the first
    route's, e.g. POST where GET and POST are two routes)."""
    static = static_methods(request)
    if static:  # `/companies/import` is that resource, not a company
        return ", ".join(sorted(static))
    path = request.scope["path"]
    methods: set[str] = set()
    for template, ops in _documented(request):
        if re.fullmatch(re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)), path):
            methods |= ops
    return ", ".join(sorted(methods))


def static_methods(request: Request) -> set[str]:
    """The methods of the path that is exactly this one, without parameters."""
    return next((ops for p, ops in _documented(request) if p == request.scope["path"]), set())


def install(app: FastAPI) -> None:
    """Turn every error, expected or not, into a problem document."""

    async def on_problem(_: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, Problem)
        return problem_response(exc)

    async def on_rule(_: Request, exc: Exception) -> JSONResponse:
        # a domain rule said no, wherever below a route: the service layer need not catch it
        assert isinstance(exc, RuleError)
        return problem_response(rule_problem(exc))

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError | PydanticValidationError)
        static = static_methods(request)
        if static and request.method not in static:
            # `PATCH /companies/import` reached `/companies/{company_id}`: it is the wrong
            # method for the resource that is there, not a bad company id
            return problem_response(Problem(
                405, "Method not allowed", None, slug="method-not-allowed",
                headers={"Allow": ", ".join(sorted(static))}))
        return problem_response(validation_problem(exc.errors()))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        title = _TITLES.get(exc.status_code, "Error")
        detail = exc.detail if isinstance(exc.detail, str) else None
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        return problem_response(Problem(exc.status_code, title, detail, headers=headers or None))

    async def on_unexpected(_: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", error_type=type(exc).__name__)
        return problem_response(
            Problem(500, "Internal server error", "an unexpected error; it has been logged")
        )

    app.add_exception_handler(Problem, on_problem)
    app.add_exception_handler(RuleError, on_rule)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(PydanticValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(Exception, on_unexpected)
