"""What the web app sends of a form field (no stack needed)."""

from __future__ import annotations

import pytest
from starlette.datastructures import FormData

from web import forms

pytestmark = pytest.mark.fast


def test_a_textareas_line_breaks_are_sent_as_the_apis_count_them() -> None:
    """Browsers send CRLF; the APIs count characters as sent, so a long description with many
    lines would pass the form's maxlength and then be refused by the API's limit."""
    form = FormData([("description", "  första raden\r\nandra\r\n\r\ntredje  "), ("empty", " ")])
    assert forms.text(form, "description") == "första raden\nandra\n\ntredje"
    assert forms.text(form, "empty") is None
    assert forms.text(form, "missing") is None
