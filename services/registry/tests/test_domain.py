"""The registry's rules, without a database."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError

from registry.domain import (
    Company,
    CompanyPatch,
    CompanyRegistration,
    RuleError,
    normalize_org_number,
)


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


# --- changes after verification -------------------------------------------------------------


def active_company(**overrides: object) -> Company:
    """A verified company as the store loads it (no events of its own)."""
    verified = Company.register(registration(**overrides), "rep", NOW).verify(
        "officer", NOW, "ok", "verified", None)
    return Company.model_validate(verified.model_dump(mode="json"))


def test_a_verification_holds_two_years_by_default() -> None:
    company = active_company()
    assert company.verification.valid_until == date(2028, 11, 28)
    leap = Company.register(registration(), "rep", NOW).verify(
        "officer", datetime(2028, 2, 29, 12, tzinfo=UTC), None, "verified", None)
    assert leap.verification.valid_until == date(2030, 2, 28)


@pytest.mark.parametrize(("patch", "field"), [
    ({"training_places": 9}, "training_places"),
    ({"legal_form": "stiftelse"}, "legal_form"),
    ({"workforce": {"as_of": "2026-06-01", "employees_total": 5, "engaged_total": 10,
                    "target_group_engaged": 4}}, "workforce"),
    ({"criteria": {"runs_business": True, "integration_purpose": True,
                   "participation": {"form": "ownership"}, "reinvests_profits": True,
                   "independent_of_public_sector": True}}, "criteria"),
])
def test_changing_what_was_verified_sends_an_active_company_to_review(
    patch: dict[str, object], field: str
) -> None:
    company = active_company()
    changed = company.update(CompanyPatch.model_validate(patch), NOW)
    assert changed.status == "active"
    assert changed.verification.level == "self_declared"
    assert changed.verification.valid_until is None
    assert changed.needs_review is True
    assert changed.version == company.version + 1
    [event] = changed.events
    assert event.type == "registry.company.updated"
    assert event.payload.model_dump()["changed_fields"] == [field]
    assert event.payload.model_dump()["needs_review"] is True
    assert event.aggregate_version == changed.version


def test_a_change_that_breaks_a_criterion_sends_it_back_to_pending() -> None:
    company = active_company()
    changed = company.update(CompanyPatch.model_validate({
        "name": "Nytt namn", "criteria": {
            "runs_business": True, "integration_purpose": True, "participation": None,
            "reinvests_profits": True, "independent_of_public_sector": True}}), NOW)
    assert changed.status == "pending"
    assert changed.qualifies_as_asf is False
    assert changed.needs_review is True
    assert changed.verification.level == "self_declared"
    assert changed.events[0].payload.model_dump()["changed_fields"] == ["name", "criteria"]


def test_other_changes_keep_the_verification() -> None:
    company = active_company()
    changed = company.update(CompanyPatch(name="Nytt namn", description="Ny text"), NOW)
    assert changed.verification == company.verification
    assert changed.needs_review is False
    assert changed.events[0].payload.model_dump()["changed_fields"] == ["name", "description"]


def test_a_patch_that_changes_nothing_changes_nothing() -> None:
    company = active_company()
    same = company.update(CompanyPatch(training_places=company.training_places,
                                       name=company.name), NOW)
    assert same == company
    assert same.events == []
    assert same.version == company.version


def test_a_pending_company_changes_without_review() -> None:
    company = Company.register(registration(), "rep", NOW)
    changed = company.update(CompanyPatch(training_places=1), NOW)
    assert changed.needs_review is False
    assert changed.status == "pending"


def test_verifying_again_clears_the_review_and_renews() -> None:
    reviewed = active_company().update(CompanyPatch(training_places=9), NOW)
    later = NOW + timedelta(days=10)
    again = reviewed.verify("officer-2", later, None, "certified", None)
    assert again.status == "active"
    assert again.needs_review is False
    assert again.verification.level == "certified"
    assert again.verification.valid_until == date(2028, 12, 8)
    assert [e.type for e in again.events] == ["registry.company.verified"]


def test_an_active_company_cannot_be_rejected() -> None:
    with pytest.raises(RuleError) as refused:
        active_company().reject("officer", NOW, "nej")
    assert refused.value.extra["allowed"] == ["deregistered"]


# --- verification expiry ---------------------------------------------------------------------


def test_the_warning_comes_30_days_before_and_the_expiry_the_day_after() -> None:
    company = active_company()
    until = company.verification.valid_until
    assert until is not None
    assert not company.expiry_warning_due(until - timedelta(days=31))
    assert company.expiry_warning_due(until - timedelta(days=30))
    assert company.expiry_warning_due(until)
    assert not company.expired_by(until)
    assert company.expired_by(until + timedelta(days=1))

    warned = company.warn_of_expiry(until - timedelta(days=30))
    assert warned.version == company.version  # the company itself is unchanged
    [warning] = warned.events
    assert warning.type == "registry.company.verification_expiring"
    assert warning.payload.model_dump()["days_left"] == 30
    assert company.events == []  # the loaded company is not touched

    gone = company.expire(until + timedelta(days=1), NOW)
    assert gone.status == "active"
    assert gone.verification.level == "self_declared"
    assert gone.verification.valid_until is None
    assert gone.needs_review is True
    assert gone.version == company.version + 1
    [expired] = gone.events
    assert expired.type == "registry.company.verification_expired"
    assert expired.payload.model_dump()["expired_on"] == until + timedelta(days=1)
    assert not gone.expiry_warning_due(until) and not gone.expired_by(until + timedelta(days=9))


def test_no_expiry_for_self_declared_or_closed_companies() -> None:
    pending = Company.register(registration(), "rep", NOW)
    assert not pending.expired_by(date(2100, 1, 1))
    gone = active_company().deregister("wound_up", None, "officer", NOW)
    assert not gone.expired_by(date(2100, 1, 1))
    with pytest.raises(RuleError):
        gone.expire(date(2100, 1, 1), NOW)


# --- control characters -------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["Kaffe\x00", "Kaffe\x1b[31m", "a\rb", "a\x7fb", "a\x85b",
                                 "a\x0bb"])
def test_control_characters_are_refused_with_the_field_named(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        registration(name=bad)
    [error] = refused.value.errors()
    assert error["loc"] == ("name",)
    assert "control character" in error["msg"]
    with pytest.raises(ValidationError) as nested:
        registration(contacts=[{"name": "Anna", "role": bad}])
    assert nested.value.errors()[0]["loc"] == ("contacts", 0, "role")


def test_newline_and_tab_are_text_and_crlf_is_a_newline() -> None:
    reg = registration(description="Rad ett\r\nRad två\tmed tabb")
    assert reg.description == "Rad ett\nRad två\tmed tabb"
