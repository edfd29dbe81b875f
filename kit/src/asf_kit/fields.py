"""Field types the services share."""

from __future__ import annotations

from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, BaseModel, ConfigDict, WithJsonSchema, field_validator


class Input(BaseModel):
    """What a caller sends: unknown fields refused, text trimmed, and a NUL refused naming its
    field (PostgreSQL text cannot hold one: it would otherwise be a 500)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value


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
