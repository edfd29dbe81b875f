"""Who sees what of a company and who may change it: the registry's service-layer decisions
taken from the caller's token, tested without a database (the fast layer). The same rules
through HTTP: test_visibility.py and tests/access/test_registry_access.py."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

import pytest

from asf_kit.auth import Principal
from asf_kit.problems import Problem
from registry.domain import Company, CompanyRegistration
from registry.views import check_may_change, company_seen_by, public_company

pytestmark = pytest.mark.fast

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def who(*roles: str, sub: str = "u-1", company: uuid.UUID | None = None,
        municipality: str | None = None) -> Principal:
    return Principal(sub=sub, name=None, roles=frozenset(roles), municipality_code=municipality,
                     company_id=company)


def pending() -> Company:
    return Company.register(CompanyRegistration.model_validate({
        "org_number": "556036-0793", "name": "Återbruket AB", "legal_form": "aktiebolag",
        "municipality_code": "1480", "industries": ["recycling"], "training_places": 4,
        "origin": "existing",
        "workforce": {"as_of": "2026-01-01", "employees_total": 5, "engaged_total": 10,
                      "target_group_engaged": 3},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "agreement"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
        "contacts": [{"name": "Anna Publik", "email": "anna@example.se", "public": True},
                     {"name": "Bo Intern", "email": "bo@example.se"}],
    }), "rep-1", NOW)


def active() -> Company:
    return pending().verify("officer-1", NOW, "Underlag komplett", "verified", date(2028, 1, 1))


def doc(c: Company) -> dict[str, Any]:
    return c.model_dump(mode="json")


OFFICER = who("registry_officer")
REP_WHO_REGISTERED = who("company_rep", sub="rep-1")
COMPETITOR = who("company_rep", sub="rep-2", company=uuid.uuid4())
CASE_WORKER = who("case_worker", municipality="0180")


def test_the_officer_and_the_own_representative_see_the_whole_company_in_any_status() -> None:
    c = pending()
    own_by_token = who("company_rep", sub="rep-9", company=c.id)
    for reader in (OFFICER, REP_WHO_REGISTERED, own_by_token):
        seen = company_seen_by(reader, doc(c))
        assert seen is not None and seen["registered_by"] == "rep-1"
        assert [x["public"] for x in seen["contacts"]] == [True, False]


def test_nobody_else_sees_a_company_that_is_not_active() -> None:
    c = pending()
    for reader in (COMPETITOR, CASE_WORKER, who("analyst"), who("auditor")):
        assert company_seen_by(reader, doc(c)) is None
    rep_of_another = who("company_rep", sub="rep-1", company=uuid.uuid4())
    assert company_seen_by(rep_of_another, doc(c)) is not None  # registered it: their own


def test_case_workers_and_analysts_see_every_contact_but_no_decision_note() -> None:
    c = active()
    for reader in (CASE_WORKER, who("analyst")):
        seen = company_seen_by(reader, doc(c))
        assert seen is not None
        assert seen["registered_by"] is None and seen["verification"]["note"] is None
        assert [x["name"] for x in seen["contacts"]] == ["Anna Publik", "Bo Intern"]
    whole = company_seen_by(OFFICER, doc(c))
    assert whole is not None and whole["verification"]["note"] == "Underlag komplett"


def test_other_representatives_and_auditors_see_what_the_public_sees() -> None:
    c = active()
    for reader in (COMPETITOR, who("auditor")):
        seen = company_seen_by(reader, doc(c))
        assert seen == public_company(doc(c))
        assert seen is not None and [x["name"] for x in seen["contacts"]] == ["Anna Publik"]
        assert "registered_by" not in seen and "verification" in seen
        assert set(seen["verification"]) == {"level", "valid_until"}


def status_refused(reader: Principal, c: Company) -> int:
    with pytest.raises(Problem) as e:
        check_may_change(reader, c)
    return e.value.status


def test_only_the_officer_and_the_own_representative_change_a_company() -> None:
    c = active()
    check_may_change(OFFICER, c)
    check_may_change(REP_WHO_REGISTERED, c)
    check_may_change(who("company_rep", sub="rep-9", company=c.id), c)
    # a company they can see but is not theirs: 403; one they cannot even see: 404
    assert status_refused(COMPETITOR, c) == 403
    assert status_refused(CASE_WORKER, c) == 403
    assert status_refused(COMPETITOR, pending()) == 404
