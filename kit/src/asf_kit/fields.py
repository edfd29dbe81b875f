"""Field types the services share."""

from __future__ import annotations

import re
import types
import typing
from datetime import date, datetime
from typing import Annotated, Any, ClassVar

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

_CC = r"\x00-\x08\x0b-\x1f\x7f-\x9f"
_CONTROL = re.compile(f"[{_CC}]")
"""Control characters (Unicode category Cc) other than tab (\\x09) and newline (\\x0a)."""

TEXT_PATTERN = rf"^(?:[^{_CC}]|\r\n)*$"
"""Text as `refuse_control_characters` lets it through, for the OpenAPI documents."""
NONBLANK_TEXT_PATTERN = rf"^(?!\s*$)(?:[^{_CC}]|\r\n)*$"
"""The same with something besides white space: what is left after trimming is not empty."""
DATE_1900_2100 = r"^(19[0-9]{2}|20[0-9]{2}|2100)-"
"""A date (`format: date`) between 1900-01-01 and 2100-12-31, as a pattern."""


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


_ISO_DATE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def _plain_types(annotation: Any) -> set[Any]:
    """`bool | None`, `Annotated[date, ...]` → {bool}, {date}: the types a field holds."""
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _plain_types(typing.get_args(annotation)[0])
    if origin in (typing.Union, types.UnionType):
        return set().union(*(_plain_types(a) for a in typing.get_args(annotation)))
    return {annotation}


def _json_type(value: Any, annotation: Any) -> None:
    """What the schema says a field is, it is: pydantic would read 0 as false or as
    1970-01-01, which the OpenAPI document (and a client) does not allow."""
    kinds = _plain_types(annotation)
    if value is None or isinstance(value, BaseModel):
        return
    if kinds == {bool} and not isinstance(value, bool):
        raise ValueError("Input should be a valid boolean: true or false")
    if int in kinds and bool not in kinds and isinstance(value, bool):
        raise ValueError("Input should be a valid number, not true or false")
    if date in kinds and not (kinds & {datetime, str}) and not isinstance(value, date):
        iso_date(value)


def iso_date(value: Any) -> Any:
    """A date as the document says it: `YYYY-MM-DD` (pydantic alone also reads numbers as
    days since 1970)."""
    if isinstance(value, date):
        return value
    if not isinstance(value, str) or not _ISO_DATE.match(value.strip()):
        raise ValueError("Input should be a valid date in the format YYYY-MM-DD")
    return value


Day = Annotated[date, BeforeValidator(iso_date)]
"""A date in a query parameter: `YYYY-MM-DD`, nothing else."""


class Documented:
    """`Annotated[str, AfterValidator(check), Documented(pattern=...)]`: what a validator
    checks, said in the JSON Schema without a second check."""

    def __init__(self, **schema: Any) -> None:
        self.schema = schema

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(core_schema)
        found.update(self.schema)
        return found


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
    def _no_control_characters(cls, value: Any, info: ValidationInfo) -> Any:
        if not cls._refuse_control:
            return value
        if info.field_name is not None:
            _json_type(value, cls.model_fields[info.field_name].annotation)
        _clean(value)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _crlf_as_newline(cls, value: Any) -> Any:
        # after the lengths are checked on what was sent (as the schema counts them)
        if not cls._refuse_control:
            return value
        if isinstance(value, str):
            return value.replace("\r\n", "\n")
        if isinstance(value, list):
            return [v.replace("\r\n", "\n") if isinstance(v, str) else v for v in value]
        return value

    @classmethod
    def __get_pydantic_json_schema__(
        cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        # the schema says what the validator does: no control characters in any text field,
        # and a field that may not be empty may not be white space alone (it is trimmed)
        schema = handler(core_schema)
        resolved = handler.resolve_ref_schema(schema)
        if cls._refuse_control:
            for prop in resolved.get("properties", {}).values():
                text_rules(prop)
        return schema


def text_rules(schema: dict[str, Any]) -> None:
    """Add the text pattern to a property's string schemas (in `anyOf` or `items` too) that
    have no pattern, format or fixed values of their own."""
    for branch in schema.get("anyOf", []):
        text_rules(branch)
    if isinstance(schema.get("items"), dict):
        text_rules(schema["items"])
    if schema.get("type") == "string" and not {"pattern", "format", "enum", "const"} & set(schema):
        blank_ok = schema.get("minLength", 0) == 0
        schema["pattern"] = TEXT_PATTERN if blank_ok else NONBLANK_TEXT_PATTERN


class _TextSchema:
    """Says in the JSON Schema what `refuse_control_characters` checks."""

    def __get_pydantic_json_schema__(
        self, core_schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        schema = handler(core_schema)
        text_rules(schema)
        return schema


def _no_control(value: str) -> str:
    refuse_control_characters(value)
    return value


Text = Annotated[str, AfterValidator(_no_control), _TextSchema()]
"""Text outside an `Input` model (a query parameter): no control characters but newline and
tab, and the schema says so."""


def not_null(schema: dict[str, Any]) -> None:
    """`Field(json_schema_extra=not_null)`: a field that may be left out but not sent as null
    (a validator refuses null) loses the null branch in its schema."""
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if "anyOf" in schema and len(branches) == 1:
        del schema["anyOf"]
        schema.update(branches[0])
    schema.pop("default", None)


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
