"""What routes ask for: the API clients, the settings, and how to answer a finished form."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.responses import RedirectResponse, Response

from web.clients import Apis
from web.settings import WebSettings
from web.templating import is_htmx


def _apis(request: Request) -> Apis:
    apis: Apis = request.app.state.apis
    return apis


def _settings(request: Request) -> WebSettings:
    settings: WebSettings = request.app.state.settings
    return settings


ApisDep = Annotated[Apis, Depends(_apis)]
SettingsDep = Annotated[WebSettings, Depends(_settings)]


def see_other(request: Request, url: str) -> Response:
    """Post, then redirect (303); an htmx request that is not a boosted form gets the
    same as a client-side redirect."""
    if is_htmx(request):
        return Response(status_code=204, headers={"HX-Redirect": url})
    return RedirectResponse(url, status_code=303)
