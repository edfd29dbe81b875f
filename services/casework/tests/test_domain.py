"""The pure rules, without a database: identity numbers, the stage machine, follow-ups, keys."""

from __future__ import annotations

import base64
import uuid
from datetime import date

import pytest
from cryptography.exceptions import InvalidTag
from pydantic import ValidationError

from asf_kit.rules import RuleError
from casework.crypto import Vault, WrappedKey, decode_key
from casework.domain import (
    TRANSITIONS,
    check_placement_start,
    check_transition,
    follow_up_schedule,
    left_for_work_or_studies,
)
from casework.inputs import (
    STAGES,
    EmploymentIn,
    TransitionIn,
    is_coordination_number,
    normalize_identity_number,
)

TODAY = date(2026, 11, 28)


@pytest.mark.parametrize("raw", [
    "880320-0016", "8803200016", "19880320-0016", "198803200016", " 19880320-0016 ",
])
def test_personnummer_in_every_written_form(raw: str) -> None:
    assert normalize_identity_number(raw, TODAY) == "19880320-0016"


def test_century_is_inferred_and_plus_means_a_hundred_years_more() -> None:
    from stdnum import luhn

    ten = "010101238" + luhn.calc_check_digit("010101238")
    assert normalize_identity_number(ten, TODAY) == f"20010101-{ten[6:]}"
    assert normalize_identity_number(f"010101+{ten[6:]}", TODAY) == f"19010101-{ten[6:]}"


def test_samordningsnummer_is_day_plus_sixty() -> None:
    # 1988-03-20 as a samordningsnummer: day 80.
    from stdnum import luhn

    number = "880380" + "001"
    number += luhn.calc_check_digit(number)
    normalized = normalize_identity_number(number, TODAY)
    assert normalized == f"19{number[:6]}-{number[6:]}"
    assert is_coordination_number(normalized)
    assert not is_coordination_number("19880320-0016")


@pytest.mark.parametrize(("raw", "message"), [
    ("880320-0018", "check digit"),
    ("881320-0016", "check digit"),  # also not a month; Luhn fails first
    ("12345", "YYMMDD"),
    ("abcdef-ghij", "YYMMDD"),
    ("19880320--0016", "YYMMDD"),
    ("20991231-0000", "check digit"),
])
def test_bad_identity_numbers_are_refused(raw: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        normalize_identity_number(raw, TODAY)


def test_impossible_and_future_dates_are_refused() -> None:
    from stdnum import luhn

    def valid(ten: str) -> str:
        return ten + luhn.calc_check_digit(ten)

    with pytest.raises(ValueError, match="not a date"):
        normalize_identity_number(valid("880231123"), TODAY)  # 31 February
    with pytest.raises(ValueError, match="not a date"):
        normalize_identity_number(valid("880399123"), TODAY)  # day 99 - 60 = 39
    with pytest.raises(ValueError, match="future"):
        normalize_identity_number("20" + valid("301212123"), TODAY)


@pytest.mark.parametrize("current", STAGES)
@pytest.mark.parametrize("to", STAGES)
def test_every_move_of_the_stage_machine(current: str, to: str) -> None:
    extra: dict[str, object] = {}
    if to == "closed":
        extra["exit_reason"] = "moved"
    if to == "employed":
        extra["employment"] = {"form": "unsubsidised", "employer_name": "X AB",
                               "start": "2026-01-01"}
    body = TransitionIn.model_validate({"to": to, **extra})
    if to not in TRANSITIONS[current] or to == "in_training":
        with pytest.raises(RuleError) as e:
            check_transition(current, body)
        assert e.value.status == 409
        assert e.value.extra["allowed"] == list(TRANSITIONS[current])
    else:
        check_transition(current, body)


def test_the_machine_is_the_one_of_the_spec() -> None:
    assert TRANSITIONS == {
        "referred": ("assessment", "closed"),
        "assessment": ("in_training", "closed"),
        "in_training": ("employed", "closed"),
        "employed": ("in_training", "closed"),
        "closed": (),
    }


def test_closing_needs_an_exit_reason_except_from_employed() -> None:
    with pytest.raises(RuleError) as e:
        check_transition("assessment", TransitionIn(to="closed"))
    assert e.value.status == 422
    check_transition("employed", TransitionIn(to="closed"))


def test_transition_body_names_what_is_missing_or_extra() -> None:
    with pytest.raises(ValidationError, match="employment is required"):
        TransitionIn.model_validate({"to": "employed"})
    with pytest.raises(ValidationError, match="exit_reason is given only"):
        TransitionIn.model_validate({"to": "assessment", "exit_reason": "moved"})
    with pytest.raises(ValidationError, match="give employer_company_id or employer_name"):
        EmploymentIn.model_validate({"form": "wage_subsidy", "start": "2026-01-01"})


@pytest.mark.parametrize(("stage", "ok"), [
    ("referred", False), ("assessment", True), ("in_training", True), ("employed", True),
    ("closed", False),
])
def test_where_a_placement_may_start(stage: str, ok: bool) -> None:
    if ok:
        check_placement_start(stage)
    else:
        with pytest.raises(RuleError):
            check_placement_start(stage)


def test_follow_up_schedule() -> None:
    assert follow_up_schedule(date(2026, 1, 1), [180, 90, 365, 90]) == [
        (90, date(2026, 4, 1)), (180, date(2026, 6, 30)), (365, date(2027, 1, 1))]


def test_left_for_work_or_studies() -> None:
    assert left_for_work_or_studies("employed", None) == "work"
    assert left_for_work_or_studies("employed", "moved") == "work"
    assert left_for_work_or_studies("assessment", "studies") == "studies"
    assert left_for_work_or_studies("in_training", "dropped_out") is None


KEY = base64.b64encode(bytes(range(32))).decode()
OTHER = base64.b64encode(bytes(range(1, 33))).decode()


def test_vault_seals_per_participant_and_shreds_with_the_key() -> None:
    vault = Vault.from_settings(KEY, "k1")
    pid = uuid.uuid4()
    data_key, wrapped = vault.new_data_key(pid)
    blob = vault.seal(data_key, pid, "personal", {"given_name": "Åsa"})
    assert b"\xc3\x85sa" not in blob
    assert vault.open(vault.unwrap(pid, wrapped), pid, "personal", blob) == {"given_name": "Åsa"}
    with pytest.raises(InvalidTag):  # bound to the participant
        vault.open(data_key, uuid.uuid4(), "personal", blob)
    with pytest.raises(InvalidTag):  # bound to the purpose
        vault.open(data_key, pid, "note", blob)
    with pytest.raises(InvalidTag):
        vault.unwrap(uuid.uuid4(), wrapped)


def test_vault_rotation_keeps_old_keys_readable() -> None:
    old = Vault.from_settings(KEY, "k1")
    pid = uuid.uuid4()
    data_key, wrapped = old.new_data_key(pid)
    new = Vault.from_settings(OTHER, "k2", {"k1": KEY})
    assert new.unwrap(pid, wrapped) == data_key
    rewrapped = new.wrap(pid, data_key)
    assert rewrapped.key_id == "k2"
    assert new.unwrap(pid, rewrapped) == data_key
    assert old.identity_hash("198803200016") in new.identity_hashes("198803200016")
    with pytest.raises(KeyError):
        old.unwrap(pid, WrappedKey("k2", rewrapped.wrapped))


def test_bad_master_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="not set"):
        Vault.from_settings(None, "k1")
    with pytest.raises(ValueError, match="32 bytes"):
        decode_key(base64.b64encode(b"short").decode(), "CASEWORK_DATA_KEY")
    with pytest.raises(ValueError, match="base64"):
        decode_key("not base64!", "CASEWORK_DATA_KEY")
