"""What every service's input models inherit (`asf_kit.fields.Input`) and how a broken rule reaches
the caller (`asf_kit.problems.rule_problem`), without a database."""

from __future__ import annotations

from typing import ClassVar

import pytest
from pydantic import ValidationError

from asf_kit.fields import Email, Input
from asf_kit.problems import rule_problem, validation_problem
from asf_kit.rules import RuleError

pytestmark = pytest.mark.fast


class Inner(Input):
    text: str


class Outer(Input):
    name: str
    email: Email | None = None
    inner: Inner | None = None


def errors(**body: object) -> list[dict[str, str]]:
    with pytest.raises(ValidationError) as e:
        Outer.model_validate(body)
    return [f.model_dump() for f in validation_problem(e.value.errors()).errors or []]


def test_text_is_trimmed_and_an_international_address_kept_in_ascii() -> None:
    o = Outer.model_validate({"name": "  Kim Ek ", "email": "kim@exempel.smörgås.se"})
    assert (o.name, o.email) == ("Kim Ek", "kim@exempel.xn--smrgs-pra0j.se")


def test_an_unknown_field_and_a_control_character_are_refused_naming_the_field() -> None:
    assert errors(name="x", nickname="y") == [
        {"field": "nickname", "message": "Extra inputs are not permitted"}]
    assert errors(name="a\x00b") == [{"field": "name", "message": (
        "contains the control character U+0000 at position 1; only newline and "
        "tab are allowed")}]
    [nested] = errors(name="x", inner={"text": "line\rover"})
    assert nested["field"] == "inner.text" and "U+000D" in nested["message"]


def test_newlines_and_tabs_stay_and_a_forms_crlf_is_a_newline() -> None:
    o = Outer.model_validate({"name": "x", "inner": {"text": "one\r\ntwo\tthree"}})
    assert o.inner is not None and o.inner.text == "one\ntwo\tthree"


def test_a_model_read_back_from_storage_may_opt_out() -> None:
    class Stored(Outer):
        _refuse_control: ClassVar[bool] = False

    assert Stored.model_validate({"name": "as stored\x01"}).name == "as stored\x01"


def test_a_broken_rule_is_a_problem_and_every_422_the_same_type() -> None:
    conflict = rule_problem(RuleError(409, "Wrong status", "not from pending",
                                      allowed=["active"]))
    assert conflict.body() == {"type": "/problems/wrong-status", "title": "Wrong status",
                               "status": 409, "detail": "not from pending", "allowed": ["active"]}
    bad = rule_problem(RuleError(422, "Validation failed", "end: before start",
                                 errors=[{"field": "end", "message": "before start"}]))
    assert bad.body()["type"] == validation_problem([]).body()["type"] == "/problems/validation"
    assert bad.body()["errors"] == [{"field": "end", "message": "before start"}]
