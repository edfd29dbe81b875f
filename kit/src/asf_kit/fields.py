"""Field types the services share."""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema, field_validator

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
"""Control characters (Unicode category Cc) other than tab (\\x09) and newline (\\x0a)."""


def refuse_control_characters(value: str) -> str:
    """Text without control characters other than newline and tab. A browser's form sends a
    textarea's line breaks as CRLF, so CRLF counts as a newline; a lone CR does not. (NUL
    among them: PostgreSQL text cannot hold it, which would otherwise be a 500.)"""
    text = value.replace("\r\n", "\n")
    found = _CONTROL.search(text)
    if found:
        raise ValueError(
            f"contains the control character U+{ord(found.group()):04X} at position "
            f"{found.start()}; only newline and tab are allowed"
        )
    return text


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return value if _CONTROL.search(value) is None else refuse_control_characters(value)
    if isinstance(value, list):
        return [refuse_control_characters(v) if isinstance(v, str) else v for v in value]
    return value


class Input(BaseModel):
    """What a caller sends: unknown fields refused, text stripped, and no control characters
    in any text field (the 422 names the field). A model that is read back from storage,
    checked when it came in, sets `_refuse_control = False`."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    _refuse_control: ClassVar[bool] = True

    @field_validator("*", mode="before")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return _clean(value) if cls._refuse_control else value


def ascii_email(value: str) -> str:
    """A deliverable-looking address in ASCII form: an international domain is stored as
    punycode, so every SMTP server and every `format: email` consumer accepts it."""
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as e:
        raise ValueError(f"is not an email address: {e}") from e
    if checked.ascii_email is None:
        raise ValueError("the part before @ must be ASCII")
    return checked.ascii_email


Email = Annotated[
    str,
    AfterValidator(ascii_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
"""An email address, validated and returned in its ASCII form."""
