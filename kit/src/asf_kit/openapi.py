"""The OpenAPI document every service publishes, made to say what the service answers.

FastAPI's generated document is the source; `install(app)` refines it in one pass:

- a parameter's schema is the value sent (never `null`, which a query cannot carry);
- every error response is `application/problem+json` with the `ProblemDetail` schema
  (`errors` names each bad field), whatever status it is;
- the statuses the shared shell answers are documented by rule, not by hand: 401 where a
  token is needed, 422 where there is input, 400 (a body that is not JSON) and 413 (too
  large) where there is a body, 412/428 exactly where `If-Match` applies, 500 everywhere;
- the `links` that lead from an operation that creates something to the ones that read or
  change it (`Link("POST /companies", "company_id")`), which a client, or schemathesis'
  stateful phase, follows;
- operation ids are the route functions' names (`register_company`), unique per service.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from asf_kit.problems import PROBLEM_JSON, FieldError, ProblemDetail

METHODS = ("get", "put", "post", "delete", "patch")

STATUS_TEXT = {
    400: "The body is not JSON (or not UTF-8)",
    401: "No token, or a token that is not valid",
    403: "The caller's roles or scope do not allow this",
    404: "Not found, or not visible to the caller",
    409: "The state does not allow this; the problem names what is allowed",
    412: "The version sent (If-Match or `version`) is not the current one",
    413: "The body is larger than the service accepts",
    422: "Bad input; `errors` names each field and rule",
    428: "No version sent: send If-Match or `version` in the body",
    429: "Too many requests; `Retry-After` says when to try again",
    500: "An unexpected error; it has been logged with the request's id",
    503: "Not ready (database, broker or consumers)",
}

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before trying again",
                                "schema": {"type": "integer"}}}
_WWW_AUTHENTICATE = {"WWW-Authenticate": {"description": "`Bearer`",
                                          "schema": {"type": "string"}}}


@dataclass(frozen=True)
class Link:
    """The operation (`"POST /participants"`) whose response's `field` is `param` elsewhere."""

    creator: str
    param: str
    field: str = "id"
    not_to: tuple[str, ...] = ()
    """Operation ids the link does not lead to: what does not exist yet (a case's plan)."""


def operation_id(route: APIRoute) -> str:
    return route.name


def install(app: FastAPI, links: Iterable[Link] = ()) -> None:
    """Serve the refined document at `/openapi.json` (and `/docs`)."""
    wanted = tuple(links)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            doc = get_openapi(
                title=app.title, version=app.version, openapi_version=app.openapi_version,
                description=app.description, routes=app.routes, tags=app.openapi_tags,
            )
            app.openapi_schema = refine(doc, wanted)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _problem_schemas() -> dict[str, Any]:
    schema = ProblemDetail.model_json_schema(ref_template="#/components/schemas/{model}")
    defs = schema.pop("$defs", {})
    schema["additionalProperties"] = True
    schema["description"] = (
        "RFC 9457 problem details. `type` is `/problems/<slug>`; every 422 is "
        "`/problems/validation` with `errors`. A problem may carry more members that say "
        "what the caller can do (`allowed`, `current_version`, `existing_id`, ...).")
    return {"ProblemDetail": schema, "FieldError": defs.get(
        "FieldError", FieldError.model_json_schema())}


def _error(status: int, old: dict[str, Any] | None) -> dict[str, Any]:
    description = (old or {}).get("description") or STATUS_TEXT.get(status, "Error")
    if description in ("Successful Response", "Validation Error") or \
            description.lower() == _http_phrase(status).lower():
        description = STATUS_TEXT.get(status, description)
    response: dict[str, Any] = {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/ProblemDetail"}}},
    }
    if status == 429:
        response["headers"] = _RETRY_AFTER
    if status == 401:
        response["headers"] = _WWW_AUTHENTICATE
    return response


def _http_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _own_shape(response: dict[str, Any] | None) -> bool:
    """A declared error response with a body of its own, not a problem (`/readyz`'s 503)."""
    for media in (response or {}).get("content", {}).values():
        ref = media.get("schema", {}).get("$ref", "")
        if ref and not ref.endswith(("/ProblemDetail", "/HTTPValidationError")):
            return True
    return False


def _has_if_match(op: dict[str, Any]) -> bool:
    return any(p.get("in") == "header" and p.get("name", "").lower() == "if-match"
               for p in op.get("parameters", []))


def refine(doc: dict[str, Any], links: Iterable[Link] = ()) -> dict[str, Any]:
    """The document with errors, statuses and links as the services answer them."""
    doc = copy.deepcopy(doc)
    schemas = doc.setdefault("components", {}).setdefault("schemas", {})
    schemas.update(_problem_schemas())
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    seen: dict[str, str] = {}
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            op = item.get(method)
            if op is None:
                continue
            where = f"{method.upper()} {path}"
            if op["operationId"] in seen:
                raise ValueError(f"operation id {op['operationId']} of {where} is also "
                                 f"{seen[op['operationId']]}'s")
            seen[op["operationId"]] = where
            _parameters(op)
            _responses(op)
    for link in links:
        _link(doc, link)
    return doc


def _parameters(op: dict[str, Any]) -> None:
    """A parameter is there or not: `null` (FastAPI's `anyOf` for `str | None`) cannot be
    sent in a query or a header, so the schema is the present value's."""
    for param in op.get("parameters", []):
        schema = param.get("schema", {})
        branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
        if "anyOf" in schema and len(branches) == 1:
            del schema["anyOf"]
            schema.update({**branches[0], **schema})


def _responses(op: dict[str, Any]) -> None:
    declared = op.get("responses", {})
    has_body = "requestBody" in op
    statuses = {int(s) for s in declared if s.isdigit() and int(s) >= 400}
    statuses -= {401, 412, 422, 428}
    if op.get("security"):
        statuses.add(401)
    if op.get("parameters") or has_body:
        statuses.add(422)
    if has_body:
        statuses |= {400, 413}
    if _has_if_match(op):
        statuses |= {412, 428}
    statuses.add(500)
    kept = {s: r for s, r in declared.items() if not (s.isdigit() and int(s) >= 400)}
    for status in sorted(statuses):
        old = declared.get(str(status))
        kept[str(status)] = old if _own_shape(old) else _error(status, old)
    op["responses"] = dict(sorted(kept.items()))


def _operations(doc: dict[str, Any]) -> Iterable[tuple[str, str, dict[str, Any]]]:
    for path, item in doc.get("paths", {}).items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path, item[method]


def _link(doc: dict[str, Any], link: Link) -> None:
    method, _, path = link.creator.partition(" ")
    creator = doc["paths"][path][method.lower()]
    created = next((s for s in ("201", "200") if s in creator["responses"]), None)
    if created is None:
        raise ValueError(f"{link.creator} answers neither 201 nor 200")
    response = creator["responses"][created]
    creator_params = {p["name"] for p in creator.get("parameters", []) if p["in"] == "path"}
    found = response.setdefault("links", {})
    for _, target_path, op in _operations(doc):
        if "{" + link.param + "}" not in target_path or op["operationId"] in link.not_to:
            continue
        parameters = {link.param: f"$response.body#/{link.field}"}
        for p in op.get("parameters", []):
            if p["in"] == "path" and p["name"] in creator_params and p["name"] != link.param:
                parameters[p["name"]] = f"$request.path.{p['name']}"
        found[op["operationId"]] = {
            "operationId": op["operationId"], "parameters": parameters,
            "description": f"`{link.field}` of the response is `{link.param}` here",
        }
    if not found:
        raise ValueError(f"no operation takes {link.param}, created by {link.creator}")
