"""One Jinja2 environment: the base layout, its blocks, and blocks rendered alone for htmx
(jinja2-fragments), with the Swedish formatting and the words for every code."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from jinja2_fragments.fastapi import Jinja2Blocks

from asf_kit import context
from web import i18n, labels, navigation
from web.auth import csrf_token, user_of


def choices(items: list[dict[str, Any]], key: str = "id", text: str = "name"
            ) -> list[tuple[str, str]]:
    """(value, words) pairs for a select or radio group from a list of API objects."""
    return [(str(i[key]), str(i[text])) for i in items]


def company_choices(items: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(str(c["id"]), i18n.gettext(
        "%(name)s (%(municipality)s) – %(free)s av %(total)s platser lediga",
        name=c["name"], municipality=c.get("municipality_name") or c["municipality_code"],
        free=c["free_places"], total=c["training_places"])) for c in items]


TEMPLATES = Jinja2Blocks(directory=str(Path(__file__).parent / "templates"))
env = TEMPLATES.env
env.add_extension("jinja2.ext.i18n")
env.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True)
env.globals.update(
    label=labels.label, options=labels.options, N_=i18n.N_,
    stage_order=labels.STAGE_ORDER, choices=choices, company_choices=company_choices,
)
env.filters.update(
    date=i18n.format_date, datetime=i18n.format_datetime, number=i18n.format_number,
    percent=i18n.format_percent, sek=i18n.format_sek,
)
env.policies["ext.i18n.trimmed"] = True


def is_htmx(request: Request) -> bool:
    return request.headers.get("hx-request") == "true" and \
        request.headers.get("hx-boosted") != "true"


def render(
    request: Request,
    template: str,
    context_vars: dict[str, Any] | None = None,
    *,
    status: int = 200,
    block: str | None = None,
    personal: bool = False,
    title: str | None = None,
) -> Response:
    """A page (or, with `block`, one block of it for htmx). `personal=True` marks a page
    that shows personal data: no cache may keep it."""
    user = user_of(request)
    ctx: dict[str, Any] = {
        "request": request,
        "user": user,
        "nav": navigation.items_for(user, request.url.path),
        "csrf_token": csrf_token(request),
        "correlation_id": context.correlation_id.get(),
        "locale": i18n.current_locale.get(),
        "flashes": request.session.pop("flash", []),
        "title": title,
        "errors": {},
        "error_list": [],
        "values": {},
    }
    ctx.update(context_vars or {})
    kwargs: dict[str, Any] = {"status_code": status}
    if block:
        kwargs["block_name"] = block
    response: Response = TEMPLATES.TemplateResponse(request, template, ctx, **kwargs)
    if personal or user is not None:
        # Every signed-in page may show what the person may see and others may not.
        response.headers["Cache-Control"] = "no-store"
    response.headers["Vary"] = "Cookie, HX-Request"
    return response


def flash(request: Request, message: str, kind: str = "success") -> None:
    """A message shown once on the next page (after a redirect)."""
    request.session.setdefault("flash", []).append({"kind": kind, "text": message})
