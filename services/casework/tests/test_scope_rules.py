"""Who may see what, and the attendance period read at once: casework's service-layer
decisions taken from the caller's token, tested without a database (the fast layer). The
same rules through HTTP, for every route and caller: tests/access/test_casework_access.py."""

from __future__ import annotations

import uuid
from datetime import date

import pytest

from asf_kit.auth import Principal
from asf_kit.problems import Problem
from casework.attendance_service import MAX_RANGE_DAYS, attendance_period
from casework.scope import company_of, may_read_stats, scope_of, sees

pytestmark = pytest.mark.fast

COMPANY = uuid.uuid4()


def who(*roles: str, municipality: str | None = None, company: uuid.UUID | None = None
        ) -> Principal:
    return Principal(sub="u-1", name=None, roles=frozenset(roles),
                     municipality_code=municipality, company_id=company)


def refused(status: int, call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(Problem) as e:
        call(*args)
    assert e.value.status == status
    return str(e.value.detail)


def test_a_case_worker_works_in_the_municipality_their_token_names() -> None:
    assert scope_of(who("case_worker", municipality="0180")) == "0180"
    assert "municipality_code" in refused(403, scope_of, who("case_worker"))
    assert company_of(who("company_rep", company=COMPANY)) == COMPANY
    assert "company_id" in refused(403, company_of, who("company_rep"))


def test_an_analyst_reads_any_municipalitys_figures_a_case_worker_only_their_own() -> None:
    analyst = who("analyst")
    assert may_read_stats(analyst, "1480") == "1480"
    assert may_read_stats(analyst, None) is None  # all municipalities
    worker = who("case_worker", municipality="0180")
    assert may_read_stats(worker, None) == "0180"
    assert may_read_stats(worker, "0180") == "0180"
    assert "own municipality" in refused(403, may_read_stats, worker, "1480")


def test_a_hosted_placement_is_seen_by_its_company_and_its_municipality_only() -> None:
    assert sees(who("company_rep", company=COMPANY), COMPANY, "0180")
    assert not sees(who("company_rep", company=uuid.uuid4()), COMPANY, "0180")
    assert sees(who("case_worker", municipality="0180"), COMPANY, "0180")
    assert not sees(who("case_worker", municipality="1480"), COMPANY, "0180")
    assert not sees(who("analyst", "auditor", municipality="0180"), COMPANY, "0180")
    # one person with both roles sees through either
    both = who("case_worker", "company_rep", municipality="1480", company=COMPANY)
    assert sees(both, COMPANY, "0180")
    refused(403, sees, who("case_worker"), COMPANY, "0180")


def test_attendance_is_read_for_the_month_so_far_and_at_most_a_year_at_once() -> None:
    today = date(2026, 3, 17)
    assert attendance_period(None, None, today) == (date(2026, 3, 1), today)
    assert attendance_period(None, date(2026, 1, 20), today) == (
        date(2026, 1, 1), date(2026, 1, 20))
    # 366 days, both ends counted
    assert attendance_period(date(2025, 3, 17), None, today) == (date(2025, 3, 17), today)
    with pytest.raises(Problem) as e:
        attendance_period(date(2025, 3, 16), None, today)
    assert e.value.body()["errors"] == [
        {"field": "from", "message": f"a period is at most {MAX_RANGE_DAYS} days"}]
    with pytest.raises(Problem) as e:
        attendance_period(date(2026, 2, 1), date(2026, 1, 31), today)
    assert (e.value.status, e.value.body()["errors"][0]["field"]) == (422, "to")
