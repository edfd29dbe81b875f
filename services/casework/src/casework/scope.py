"""Who may see what in casework, read from the caller's token. Pure, no I/O: each use case
asks here before it looks anything up (tested without a database in test_scope_rules.py).

A case worker works in the municipality their token names; a company representative for
the company theirs names; an analyst reads every municipality's figures.
"""

from __future__ import annotations

from uuid import UUID

from asf_kit.auth import Principal, Role
from asf_kit.problems import forbidden


def scope_of(who: Principal) -> str:
    """The municipality a case worker works in; 403 when the token names none."""
    if who.municipality_code is None:
        raise forbidden("a case worker's token must carry municipality_code")
    return who.municipality_code


def company_of(who: Principal) -> UUID:
    """The company a rep represents; 403 when the token names none."""
    if who.company_id is None:
        raise forbidden("a company rep's token must carry company_id")
    return who.company_id


def may_read_stats(who: Principal, municipality: str | None) -> str | None:
    """An analyst reads any municipality or all; a case worker only their own."""
    if who.has(Role.ANALYST):
        return municipality
    own = scope_of(who)
    if municipality is not None and municipality != own:
        raise forbidden("a case worker sees the outcomes of their own municipality only")
    return own


def sees(who: Principal, company_id: UUID, municipality_code: str) -> bool:
    """A placement hosted at `company_id` for `municipality_code` (its attendance and
    statements): a rep sees their company's, a case worker their municipality's."""
    if who.has(Role.CASE_WORKER) and scope_of(who) == municipality_code:
        return True
    return who.has(Role.COMPANY_REP) and company_of(who) == company_id
