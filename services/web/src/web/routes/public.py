"""The public pages (SPEC 3.4): the register of active companies, a company's public page,
the open data and the handbook of published learning examples. No sign-in: every call goes
to the registry's `/public/...` API without a token, with the visitor's address forwarded
(`X-Forwarded-For`) so that the registry's rate limit counts each visitor, not the web app.

Stable addresses people can link to: `/register` (with `?q=` and the filters),
`/register/{company_id}`, `/handbook`, `/handbook/{example_id}`, `/open-data`; the open-data
files at `/open-data/asf-register.csv` and `.json` are streamed from the registry as they
come, never held whole.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any
from urllib.parse import urlencode
from uuid import UUID

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from starlette.background import BackgroundTask

from web import forms
from web.charts import Bar, bar_chart
from web.clients import Apis, ApiUnavailable
from web.deps import ApisDep
from web.errors import error_page
from web.i18n import N_
from web.i18n import gettext as _
from web.templating import render

router = APIRouter()

REGISTER_FILTERS = ("q", "county_code", "municipality_code", "industry",
                    "reserved_contract_eligible")
HANDBOOK_FILTERS = ("q", "collaboration_type", "county_code")
FIELD_LABELS = {
    "q": N_("Sök på namn"), "county_code": N_("Län"), "municipality_code": N_("Kommun"),
    "industry": N_("Bransch"), "reserved_contract_eligible": N_("Reserverad upphandling"),
    "collaboration_type": N_("Typ av samarbete"), "cursor": N_("Sida"),
}
PAGE_SIZE = 25

CSV_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", N_("Företagets id i registret (UUID); samma id som i adressen /register/{id}.")),
    ("org_number", N_("Organisationsnummer (NNNNNN-NNNN).")),
    ("name", N_("Företagets namn.")),
    ("legal_form", N_("Juridisk form, som kod: ekonomisk_forening, ideell_forening, "
                      "aktiebolag, stiftelse, handelsbolag, kommanditbolag eller other.")),
    ("municipality_code", N_("Kommunkod (fyra siffror, SCB) där företaget har sitt säte.")),
    ("municipality_name", N_("Kommunens namn.")),
    ("county_code", N_("Länskod (två siffror, SCB).")),
    ("county_name", N_("Länets namn.")),
    ("industries", N_("Branscher som koder, åtskilda med semikolon (;).")),
    ("description", N_("Företagets egen beskrivning.")),
    ("website", N_("Webbplats.")),
    ("training_places", N_("Antal platser för arbetsträning.")),
    ("qualifies_as_asf", N_("true om alla fem kriterierna för ett arbetsintegrerande socialt "
                            "företag är uppfyllda, annars false.")),
    ("reserved_contract_eligible", N_("true om företaget kan delta i reserverad upphandling "
                                      "(LOU 4 kap. 18 §: minst 30 %% av de som arbetar där "
                                      "tillhör målgruppen), annars false.")),
    ("verification_level", N_("Granskningsnivå: self_declared (egendeklarerat), verified "
                              "(granskat) eller certified (certifierat).")),
    ("verification_valid_until", N_("Datum (ÅÅÅÅ-MM-DD) då granskningen slutar gälla.")),
    ("contacts", N_("De kontaktpersoner som företaget valt att visa offentligt, som en "
                    "JSON-lista med name, role, email och phone.")),
)
"""The registry's open-data columns in its documented, stable order (registry.views.
CSV_COLUMNS), each explained; a test compares them with the header of the real file."""

DOWNLOADS = {"csv": "text/csv", "json": "application/json"}
_PASSED_ON = ("content-type", "content-disposition", "etag", "cache-control",
              "x-produced-at", "link")

_MUNICIPALITIES: dict[str, dict[str, Any]] = {}
SHARED_SECONDS = 60.0
"""How long a public answer that is the same for everybody (the counties' numbers) is kept:
the registry's own `Cache-Control: public, max-age=60`."""
_shared: dict[str, tuple[float, Any]] = {}
_shared_locks: dict[tuple[int, str], asyncio.Lock] = {}
"""One lock per event loop and path (a lock belongs to the loop that first waits on it)."""


# --- calling the public API ----------------------------------------------------------------

def _forwarded(request: Request) -> dict[str, str]:
    """The visitor's address (already the forwarded one when a trusted proxy is in front,
    uvicorn's proxy headers), so the registry's rate limit counts each visitor."""
    return {"X-Forwarded-For": request.client.host} if request.client else {}


class RateLimited(Exception):
    def __init__(self, retry_after: str) -> None:
        super().__init__(retry_after)
        self.retry_after = retry_after


async def _get(request: Request, apis: Apis, path: str, params: dict[str, Any] | None = None,
               accept: tuple[int, ...] = ()) -> httpx.Response:
    r = await apis.registry.call("GET", path, None, params=params, headers=_forwarded(request),
                                 accept=(429, *accept))
    if r.status_code == 429:
        raise RateLimited(r.headers.get("retry-after", "60"))
    return r


def _rate_limited(request: Request, e: RateLimited) -> Response:
    response = error_page(request, 429, _("För många förfrågningar just nu"), _(
        "Registret har fått många förfrågningar från din adress på kort tid. Vänta "
        "%(seconds)s sekunder och försök igen.", seconds=e.retry_after))
    response.headers["Retry-After"] = e.retry_after
    return response


async def _shared_get(request: Request, apis: Apis, path: str) -> Any:
    """A public answer that is the same for everybody, kept for a minute as the registry's
    `Cache-Control` allows, and fetched once however many visitors ask at the same moment
    (the counties' numbers cost the registry a pass over the whole register)."""
    now = time.monotonic()
    kept = _shared.get(path)
    if kept and kept[0] > now:
        return kept[1]
    async with _shared_locks.setdefault((id(asyncio.get_running_loop()), path),
                                        asyncio.Lock()):
        kept = _shared.get(path)
        if kept and kept[0] > time.monotonic():
            return kept[1]
        r = await _get(request, apis, path)
        _shared[path] = (time.monotonic() + _max_age(r.headers.get("cache-control")), r.json())
        return _shared[path][1]


def _max_age(cache_control: str | None) -> float:
    for part in (cache_control or "").split(","):
        name, _, value = part.strip().partition("=")
        if name == "no-store" or name == "no-cache" or name == "private":
            return 0.0
        if name == "max-age" and value.isdigit():
            return min(float(value), SHARED_SECONDS)
    return 0.0


async def _municipalities(request: Request, apis: Apis) -> dict[str, dict[str, Any]]:
    """code → {code, name, county_code, county_name}: the same 290 for everybody, loaded
    once from the public API."""
    if not _MUNICIPALITIES:
        page = (await _get(request, apis, "/public/municipalities")).json()
        _MUNICIPALITIES.update({m["code"]: m for m in page["items"]})
    return _MUNICIPALITIES


def _counties(munis: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted({(m["county_code"], m["county_name"]) for m in munis.values()})


def _municipality_choices(munis: dict[str, dict[str, Any]]) -> list[tuple[str, str]]:
    return sorted(((c, f"{m['name']} ({m['county_name']})") for c, m in munis.items()),
                  key=lambda x: x[1])


def _filters(request: Request, names: tuple[str, ...]) -> dict[str, str]:
    """The filters as given in the address (trimmed; empty ones left out)."""
    return {n: v.strip() for n in names if (v := request.query_params.get(n)) and v.strip()}


def _link(path: str, filters: dict[str, str], cursor: str | None = None) -> str:
    query = {**filters, **({"cursor": cursor} if cursor else {})}
    return path + ("?" + urlencode(query) if query else "")


def _problem(r: httpx.Response) -> forms.FormErrors:
    return forms.from_problem(r.json(), {k: _(v) for k, v in FIELD_LABELS.items()})


# --- the register --------------------------------------------------------------------------

def _county_charts(stats: dict[str, Any]) -> dict[str, Any]:
    counties = stats["counties"]
    companies = [Bar(c["county_name"], c["companies_active"]) for c in counties]
    places = [Bar(c["county_name"], c["training_places"]) for c in counties]
    return {
        "companies": bar_chart(_("Aktiva företag per län"), companies,
                               chart_id="chart-public-companies"),
        "places": bar_chart(_("Platser för arbetsträning per län"), places,
                            chart_id="chart-public-places"),
    }


@router.get("/register")
async def register(request: Request, apis: ApisDep) -> Response:
    filters = _filters(request, REGISTER_FILTERS)
    if "reserved_contract_eligible" in filters:
        filters["reserved_contract_eligible"] = "true"  # a checkbox: on or not given
    cursor = request.query_params.get("cursor") or None
    try:
        munis = await _municipalities(request, apis)
        r = await _get(request, apis, "/public/companies", {
            **filters, "limit": PAGE_SIZE, "cursor": cursor}, accept=(422,))
        errors = _problem(r) if r.status_code == 422 else forms.FormErrors()
        page = r.json() if r.status_code == 200 else {"items": [], "next_cursor": None}
        front = not filters and not cursor
        stats = await _shared_get(request, apis, "/public/stats") if front else None
    except RateLimited as e:
        return _rate_limited(request, e)
    return render(request, "public_register.html", {
        **errors.context(), "values": filters, "filters": filters, "cursor": cursor,
        "companies": page["items"],
        "next_link": _link("/register", filters, page.get("next_cursor"))
        if page.get("next_cursor") else None,
        "first_link": _link("/register", filters) if cursor else None,
        "counties": _counties(munis), "municipalities": _municipality_choices(munis),
        "stats": stats, "charts": _county_charts(stats) if stats else None,
    }, status=422 if errors else 200, title=_("Registret över arbetsintegrerande sociala "
                                                "företag"))


@router.get("/register/{company_id}")
async def register_company(company_id: UUID, request: Request, apis: ApisDep) -> Response:
    try:
        r = await _get(request, apis, f"/public/companies/{company_id}", accept=(404,))
    except RateLimited as e:
        return _rate_limited(request, e)
    if r.status_code == 404:
        return error_page(request, 404, _("Företaget finns inte i registret"), _(
            "Registret visar bara aktiva företag. Företaget kan ha avregistrerats, eller så är "
            "adressen fel."))
    company = r.json()
    return render(request, "public_company.html", {"c": company}, title=company["name"])


# --- open data -----------------------------------------------------------------------------

@router.get("/open-data")
async def open_data(request: Request) -> Response:
    return render(request, "public_open_data.html", {"columns": CSV_COLUMNS},
                  title=_("Öppna data: registret att ladda ner"))


@router.get("/open-data/asf-register.{extension}")
async def open_data_file(extension: str, request: Request, apis: ApisDep) -> Response:
    """The registry's open-data file, streamed through chunk by chunk (with its ETag,
    cache time, file name with the time it was produced, and licence link)."""
    if extension not in DOWNLOADS:
        return error_page(request, 404, _("Sidan finns inte"), _(
            "Registret finns att ladda ner som CSV och som JSON."))
    api = apis.registry
    headers = api.headers(None, {**_forwarded(request), "Accept": DOWNLOADS[extension]})
    if request.headers.get("if-none-match"):
        headers["If-None-Match"] = request.headers["if-none-match"]
    upstream_request = api.client.build_request(
        "GET", f"/public/companies.{extension}", headers=headers,
        timeout=httpx.Timeout(60.0, connect=2.0))  # 60 s: the longest wait for one chunk
    try:
        upstream = await api.client.send(upstream_request, stream=True)
    except httpx.TimeoutException as e:
        raise ApiUnavailable(api.name, "timeout") from e
    except httpx.TransportError as e:
        raise ApiUnavailable(api.name, "unreachable") from e
    passed = {k: upstream.headers[k] for k in _PASSED_ON if k in upstream.headers}
    if upstream.status_code != 200:
        await upstream.aclose()
        if upstream.status_code == 304:
            return Response(status_code=304, headers=passed)
        if upstream.status_code == 429:
            return _rate_limited(request, RateLimited(upstream.headers.get("retry-after",
                                                                           "60")))
        raise ApiUnavailable(api.name, f"status {upstream.status_code}")

    # Closed after the response, also when the visitor leaves before the first chunk.
    return StreamingResponse(upstream.aiter_bytes(), headers=passed,
                             background=BackgroundTask(upstream.aclose))


# --- the handbook --------------------------------------------------------------------------

@router.get("/handbook")
async def handbook(request: Request, apis: ApisDep) -> Response:
    filters = _filters(request, HANDBOOK_FILTERS)
    cursor = request.query_params.get("cursor") or None
    try:
        munis = await _municipalities(request, apis)
        r = await _get(request, apis, "/public/learning-examples", {
            **filters, "limit": PAGE_SIZE, "cursor": cursor}, accept=(422,))
    except RateLimited as e:
        return _rate_limited(request, e)
    errors = _problem(r) if r.status_code == 422 else forms.FormErrors()
    page = r.json() if r.status_code == 200 else {"items": [], "next_cursor": None}
    return render(request, "public_handbook.html", {
        **errors.context(), "values": filters, "filters": filters, "cursor": cursor,
        "examples": page["items"],
        "next_link": _link("/handbook", filters, page.get("next_cursor"))
        if page.get("next_cursor") else None,
        "first_link": _link("/handbook", filters) if cursor else None,
        "counties": _counties(munis),
    }, status=422 if errors else 200, title=_("Handboken: lärande exempel"))


@router.get("/handbook/{example_id}")
async def handbook_example(example_id: UUID, request: Request, apis: ApisDep) -> Response:
    try:
        r = await _get(request, apis, f"/public/learning-examples/{example_id}",
                       accept=(404,))
    except RateLimited as e:
        return _rate_limited(request, e)
    if r.status_code == 404:
        return error_page(request, 404, _("Exemplet finns inte i handboken"), _(
            "Handboken visar bara publicerade exempel. Kontrollera adressen."))
    example = r.json()
    return render(request, "public_example.html", {"e": example}, title=example["title"])
