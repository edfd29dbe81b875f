"""The header's navigation: what each role works with, and the public pages.

One list, so later pages (the public register, the handbook, open data, plans,
attendance, statements) are one line each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from web.i18n import N_, gettext

if TYPE_CHECKING:
    from web.auth import User


@dataclass(frozen=True)
class NavItem:
    href: str
    text: str
    roles: tuple[str, ...] = ()
    """Shown to these roles; empty: shown to everybody, signed in or not."""


NAV: tuple[NavItem, ...] = (
    NavItem("/caseload", N_("Ärenden"), ("case_worker",)),
    NavItem("/participants/new", N_("Ny deltagare"), ("case_worker",)),
    NavItem("/worklists", N_("Att göra"), ("case_worker",)),
    NavItem("/review", N_("Granskning"), ("registry_officer",)),
    NavItem("/companies", N_("Företag"), ("registry_officer", "case_worker")),
    NavItem("/companies/import", N_("Importera"), ("registry_officer",)),
    NavItem("/my-company", N_("Mitt företag"), ("company_rep",)),
    NavItem("/attendance", N_("Närvaro"), ("company_rep",)),
    NavItem("/statements", N_("Månadsunderlag"), ("company_rep", "case_worker")),
    NavItem("/stats", N_("Statistik"), ("analyst", "case_worker")),
    NavItem("/learning-examples", N_("Lärande exempel"), ("analyst", "registry_officer")),
    NavItem("/contacts", N_("Mottagare"), ("analyst",)),
    NavItem("/subscriptions", N_("Utskick"), ("analyst",)),
    NavItem("/templates", N_("Mallar"), ("analyst",)),
    NavItem("/deliveries", N_("Leveranser"), ("analyst", "registry_officer")),
    NavItem("/audit", N_("Loggranskning"), ("auditor",)),
    # the public pages, for everybody (signed in or not)
    NavItem("/register", N_("Registret")),
    NavItem("/handbook", N_("Handboken")),
    NavItem("/open-data", N_("Öppna data")),
)


@dataclass(frozen=True)
class Shown:
    href: str
    text: str
    current: bool


def items_for(user: User | None, path: str) -> list[Shown]:
    shown = []
    for item in NAV:
        if item.roles and (user is None or not user.has(*item.roles)):
            continue
        current = path == item.href or (path.startswith(item.href + "/") and not any(
            other.href != item.href and path.startswith(other.href) and
            len(other.href) > len(item.href) for other in NAV))
        shown.append(Shown(item.href, gettext(item.text), current))
    return shown
