"""The rules the OpenAPI documents cannot express: the ONE list of schemathesis' exceptions.

Everything else a service checks is in its schema (patterns, lengths, ranges, enums, `if/then`
and `oneOf` for conditional fields), and schemathesis runs with `--checks all` against it.
A request that is valid by the schema and still refused is a failure, unless the refusal is
one of the rules below: then the operation's description (or the field's) says so, and this
hook, loaded with `SCHEMATHESIS_HOOKS`, drops that one failure and nothing else.

An exception matches a "schema-valid request rejected" failure (ST202; one is about ST201,
"schema-violating request accepted", and one about ST301, "deleted resource still available"):
by the status,
the operations it applies to, and the `errors` of the problem document (each bad field must be
one the rule names, with the rule's message), so any other refusal still fails the run.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any, NamedTuple

import schemathesis


class Exception_(NamedTuple):
    name: str
    why: str
    statuses: tuple[int, ...]
    operations: tuple[str, ...] = ()
    """`METHOD /path` as in the document; empty: every operation."""
    fields: str = ".*"
    """A regular expression every refused field must match (`errors[].field`)."""
    messages: str = ".*"
    """A regular expression every refusal's message must match (`errors[].message`)."""
    code: str = "ST202"
    """schemathesis' failure code: ST202 a schema-valid request refused."""


EXCEPTIONS: tuple[Exception_, ...] = (
    Exception_(
        "opaque cursor",
        "a list's `cursor` is only a `next_cursor` the API returned (a keyset, encoded); "
        "the schema gives its alphabet, but any other string of it is refused",
        (422,), fields=r"cursor", messages=r"not a cursor this API returned"),
    Exception_(
        "If-Match or version",
        "a change needs the version read, as the If-Match header or as `version` in the body "
        "(428 when neither, 422 when both and they differ, or If-None-Match: * with a "
        "version); it must be the current one (412): two places, a header and the body, "
        "which OpenAPI cannot tie together, and the current version is state",
        (428, 412, 422), fields=r"version|If-None-Match|",
        messages=r"send the version|has changed since|differs from If-Match|give either"),
    Exception_(
        "organisationsnummer check digit",
        "`org_number` ends in a Luhn check digit (the pattern holds the rest: 10 digits, "
        "group digit not 2, third digit 2 or more)",
        (422,), ("POST /companies",), fields=r"org_number", messages=r"check digit"),
    Exception_(
        "personnummer check digit and date",
        "`personal_identity_number` ends in a Luhn check digit, and its date must be a real "
        "day not in the future (the pattern holds the shape, month and day ranges)",
        (422,), ("POST /participants", "POST /participants/search"),
        fields=r"personal_identity_number",
        messages=r"check digit|the date part"),
    Exception_(
        "one field against another",
        "an end not before its start, part of a total not above it, a period of attendance "
        "at most 366 days, workforce figures as of a day not in the future, a next review "
        "not in the past: JSON Schema compares a field with constants, never with another "
        "field or today",
        (422,), fields=r"body|end|planned_end|to|from|workforce|as_of|workforce\.as_of"
        r"|start|next_review_date|held_on|date",
        messages=r"cannot be before|cannot exceed|in the future|at most 366 days"
        r"|cannot be after|before from|ends before it starts|in the past"),
    Exception_(
        "a reference to what exists",
        "an id in a body must name something there is (a contact for a subscription, the "
        "companies a learning example names, a case worker casework knows for `assigned_to`); "
        "what exists is state, not schema",
        (422,), ("POST /subscriptions", "PATCH /subscriptions/{subscription_id}",
                 "POST /learning-examples", "POST /participants",
                 "PATCH /participants/{participant_id}",
                 "POST /participants/{participant_id}/placements"),
        fields=r"contact_id|company_ids\[\d+\]|assigned_to|company_id",
        messages=r"no (contact|company) with this id|is not a case worker"),
    Exception_(
        "lengths after trimming",
        "text is trimmed of white space at either end before its length is checked (a "
        "value that is blank is empty), so a string over `maxLength` only by that white "
        "space is taken, trimmed: the schema counts what is sent",
        (200, 201), code="ST201", messages=r"violates `maxLength`"),
    Exception_(
        "erasure keeps the anonymous case",
        "DELETE /participants/{id} erases the person's data (the product's erasure); the case "
        "stays, without it, for statistics and the access log, so it can still be read",
        (200,), ("GET /participants/{participant_id}",
                 "GET /participants/{participant_id}/timeline",
                 "GET /participants/{participant_id}/access-log",
                 "GET /participants/{participant_id}/plan"), code="ST301"),
    Exception_(
        "a subscription changed into an impossible one",
        "a PATCH is checked as the whole subscription it makes, with the stored fields: "
        "event_type and template must still belong together, and exactly one of contact_id "
        "and role remain",
        (422,), ("PATCH /subscriptions/{subscription_id}",),
        fields=r"role|template|event_type"),
    Exception_(
        "a contact changed into an impossible one",
        "a PATCH is checked as the whole contact it makes: a case worker keeps a "
        "municipality (for a new contact the schema says so with if/then)",
        (422,), ("PATCH /contacts/{contact_id}",), fields=r"municipality_code",
        messages=r"required for a case worker"),
    Exception_(
        "deliverable-looking email",
        "an address is checked by email_validator: beyond `format: email`, special-use "
        "domains (.test, .local, .invalid, ...) and some syntax RFC 5322 allows are refused",
        (422,), fields=r"(.*\.)?email", messages=r"is not an email address"),
    Exception_(
        "CSV import rows",
        "`text/csv` with the header of IMPORT_COLUMNS, each row a company by the rules of "
        "POST /companies: a CSV document's content has no JSON Schema",
        (422,), ("POST /companies/import",)),
    Exception_(
        "mail templates render",
        "a template version must render (Jinja) with the variables of its event; a "
        "preview's `payload` must be the payload of the event of the template named in the "
        "path: both depend on which template, which the body's schema cannot",
        (422,), ("POST /templates/{name}/versions", "POST /templates/{name}/preview")),
)
"""Besides these, refusals a schema could not foresee are 409s, which schemathesis allows
for valid data: a company's free training places (a placement at a full company), moves the
state machine does not allow, a duplicate organisationsnummer."""


def _padded(value: Any) -> bool:
    """Some text in the body begins or ends with white space (which is trimmed)."""
    if isinstance(value, str):
        return value != value.strip()
    if isinstance(value, dict):
        return any(_padded(v) for v in value.values())
    if isinstance(value, list):
        return any(_padded(v) for v in value)
    return False


def _problem(response: Any) -> dict[str, Any]:
    try:
        body = json.loads(response.content or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def matching(failure_code: str, operation: str, status: int, problem: dict[str, Any]
             ) -> list[Exception_]:
    """The exceptions that cover this failure: each refusal in the problem must be one of
    them, or the failure stands (an empty list)."""
    errors = problem.get("errors") or [{"field": "", "message": problem.get("detail") or ""}]
    applicable = [e for e in EXCEPTIONS if e.code == failure_code and status in e.statuses
                  and (not e.operations or operation in e.operations)]
    found: list[Exception_] = []
    for error in errors:
        field, message = str(error.get("field", "")), str(error.get("message", ""))
        cover = next((e for e in applicable if re.fullmatch(e.fields, field)
                      and re.search(e.messages, message)), None)
        if cover is None:
            return []
        found.append(cover)
    return found


@schemathesis.hook
def filter_failure(context: Any, failure: Any, case: Any, response: Any) -> bool:
    operation = f"{case.operation.method.upper()} {case.operation.path}"
    problem = _problem(response)
    if failure.code == "ST201":  # the refusal is the failure message, the body is an answer
        problem = {"detail": str(failure.message)} if _padded(case.body) else {}
    found = matching(failure.code, operation, response.status_code, problem)
    if not found:
        return True
    log = os.environ.get("ASF_EXCEPTIONS_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as f:
            for exc in found:
                f.write(json.dumps({"exception": exc.name, "operation": operation}) + "\n")
    return False
