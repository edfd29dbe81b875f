"""What every service's input models inherit (`asf_kit.fields.Input`), without a database."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from asf_kit.fields import Email, Input
from asf_kit.problems import validation_problem

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


def test_an_unknown_field_and_a_nul_are_refused_naming_the_field() -> None:
    assert errors(name="x", nickname="y") == [
        {"field": "nickname", "message": "Extra inputs are not permitted"}]
    [nul] = errors(name="a\x00b")
    assert nul["field"] == "name" and "NUL" in nul["message"]
    [nested] = errors(name="x", inner={"text": "\x00"})
    assert nested["field"] == "inner.text" and "NUL" in nested["message"]
