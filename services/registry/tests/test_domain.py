"""The registry's rules, without a database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from registry.domain import (
    Company,
    CompanyPatch,
    CompanyRegistration,
    RuleError,
    normalize_org_number,
)

pytestmark = pytest.mark.fast


def registration(**overrides: object) -> CompanyRegistration:
    body: dict[str, object] = {
        "org_number": "556036-0793", "name": "Återbruket AB", "legal_form": "aktiebolag",
        "municipality_code": "1480", "industries": ["recycling"],
        "workforce": {"as_of": "2026-01-01", "employees_total": 5, "engaged_total": 10,
                      "target_group_engaged": 3},
        "training_places": 4, "origin": "existing",
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "agreement"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    }
    body.update(overrides)
    return CompanyRegistration.model_validate(body)


NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.mark.parametrize("raw", ["556036-0793", "5560360793", " 556036-0793 "])
def test_org_number_is_accepted_with_or_without_dash(raw: str) -> None:
    assert normalize_org_number(raw) == "556036-0793"


@pytest.mark.parametrize(("raw", "fragment"), [
    ("556036-0794", "check digit"),
    ("55603-60793", "10 digits"),
    ("abc", "10 digits"),
    ("212000-0142", "public body"),  # Stockholms kommun
    ("811218-9876", "personal identity number"),
])
def test_bad_org_numbers_are_refused_with_the_rule(raw: str, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        normalize_org_number(raw)


def test_all_five_criteria_make_an_asf() -> None:
    company = Company.register(registration(), "rep", NOW)
    assert company.qualifies_as_asf
    assert company.unmet_criteria == []
    assert company.county.code == "14"
    assert company.status == "pending"
    assert company.verification.level == "self_declared"


def test_a_missing_participation_is_an_unmet_criterion() -> None:
    reg = registration(criteria={
        "runs_business": True, "integration_purpose": True, "participation": None,
        "reinvests_profits": True, "independent_of_public_sector": True})
    company = Company.register(reg, "rep", NOW)
    assert not company.qualifies_as_asf
    assert company.unmet_criteria == ["participation"]


def test_other_documented_participation_needs_a_description() -> None:
    with pytest.raises(ValidationError, match="description is required"):
        registration(criteria={
            "runs_business": True, "integration_purpose": True,
            "participation": {"form": "other_documented"},
            "reinvests_profits": True, "independent_of_public_sector": True})


@pytest.mark.parametrize(("target", "engaged", "eligible"), [
    (3, 10, True),     # exactly 30 %
    (2, 10, False),    # 20 %
    (29, 100, False),  # just under
    (0, 0, False),     # nobody engaged
])
def test_reserved_contract_needs_thirty_percent(target: int, engaged: int, eligible: bool) -> None:
    reg = registration(workforce={"as_of": "2026-01-01", "employees_total": 0,
                                  "engaged_total": engaged, "target_group_engaged": target})
    assert Company.register(reg, "rep", NOW).reserved_contract_eligible is eligible


def test_reserved_contract_needs_the_integration_purpose() -> None:
    reg = registration(criteria={
        "runs_business": True, "integration_purpose": False,
        "participation": {"form": "ownership"}, "reinvests_profits": True,
        "independent_of_public_sector": True})
    company = Company.register(reg, "rep", NOW)
    assert company.target_group_share == 0.3
    assert not company.reserved_contract_eligible


def test_status_moves_and_refusals_name_the_allowed_ones() -> None:
    company = Company.register(registration(), "rep", NOW)
    active = company.verify("officer", NOW, None, "verified", None)
    assert active.status == "active"
    assert active.version == 2
    assert active.verification.valid_until is not None
    with pytest.raises(RuleError) as refused:
        active.reject("officer", NOW, "late")
    assert refused.value.status == 409
    assert refused.value.extra["allowed"] == ["deregistered"]
    gone = active.deregister("criteria_unmet", None, "officer", NOW)
    assert gone.status == "deregistered"
    with pytest.raises(RuleError):
        gone.update(CompanyPatch(name="Nytt namn"), NOW)


def test_a_company_that_does_not_qualify_cannot_be_verified() -> None:
    reg = registration(criteria={
        "runs_business": True, "integration_purpose": True, "participation": None,
        "reinvests_profits": False, "independent_of_public_sector": True})
    company = Company.register(reg, "rep", NOW)
    with pytest.raises(RuleError) as refused:
        company.verify("officer", NOW, None, "verified", None)
    assert refused.value.extra["unmet_criteria"] == ["participation", "reinvests_profits"]


def test_workforce_must_add_up() -> None:
    with pytest.raises(ValidationError, match="target_group_engaged cannot exceed"):
        registration(workforce={"as_of": "2026-01-01", "employees_total": 1,
                                "engaged_total": 5, "target_group_engaged": 6})
