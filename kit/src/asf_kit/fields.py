"""Field types the services share."""

from __future__ import annotations

from typing import Annotated

from email_validator import EmailNotValidError, validate_email
from pydantic import AfterValidator, WithJsonSchema


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
