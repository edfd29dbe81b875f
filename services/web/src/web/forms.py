"""Forms: what was typed, turned into an API body, and an API's 422 turned back into a
message beside each field plus an error summary at the top (GOV.UK's pattern)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from web.i18n import N_, gettext

_DATE = N_("Ange ett datum (ÅÅÅÅ-MM-DD)")
_KNOWN_MESSAGES = {
    "Field required": N_("Måste fyllas i"),
    "field required": N_("Måste fyllas i"),
    "String should have at least 1 character": N_("Måste fyllas i"),
    "may not be null": N_("Måste fyllas i"),
    "Input should be a valid integer, unable to parse string as an integer":
        N_("Ange ett heltal"),
    "Input should be a valid number, unable to parse string as a number": N_("Ange ett tal"),
    "the check digit does not match": N_("Kontrollsiffran stämmer inte"),
    "must be YYMMDD-NNNN or YYYYMMDD-NNNN (the dash may be left out)":
        N_("Skriv som ÅÅMMDD-NNNN eller ÅÅÅÅMMDD-NNNN"),
    "is not a phone number": N_("Är inte ett telefonnummer"),
}


def translate_message(message: str) -> str:
    known = _KNOWN_MESSAGES.get(message)
    if known:
        return gettext(known)
    if message.startswith("Input should be a valid date"):
        return gettext(_DATE)
    if message.startswith("Input should be a valid UUID"):
        return gettext("Välj ett alternativ")
    if message.startswith("Input should be greater than or equal to"):
        return gettext("Får inte vara mindre än %(n)s", n=message.rsplit(" ", 1)[-1])
    if message.startswith("Input should be less than or equal to"):
        return gettext("Får inte vara större än %(n)s", n=message.rsplit(" ", 1)[-1])
    if message.startswith("Input should be "):
        return gettext("Välj ett av alternativen")
    if message.startswith("value is not a valid email address"):
        return gettext("Är inte en e-postadress")
    return message


def anchor(name: str) -> str:
    """The id of a field's input: `workforce.as_of` → `f-workforce-as_of`."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", name)


@dataclass
class FormErrors:
    fields: dict[str, str] = field(default_factory=dict)
    summary: list[dict[str, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.summary)

    def add(self, name: str | None, message: str, label: str | None = None) -> None:
        if name is not None and name not in self.fields:
            self.fields[name] = message
        text = f"{label}: {message}" if label else message
        self.summary.append({"href": f"#{anchor(name)}" if name else "#main", "text": text})

    def context(self) -> dict[str, Any]:
        return {"errors": self.fields, "error_list": self.summary}


def from_problem(problem: dict[str, Any], known: dict[str, str],
                 aliases: dict[str, str] | None = None) -> FormErrors:
    """Each `errors[]` entry beside the form field it names (`known`: field → label);
    a field the form lacks is placed on its nearest parent the form has, or in the summary."""
    out = FormErrors()
    aliases = aliases or {}
    entries = problem.get("errors") or []
    if not entries:
        out.add(None, str(problem.get("detail") or problem.get("title") or ""))
        return out
    for e in entries:
        name = str(e.get("field", ""))
        name = aliases.get(name, name)
        message = translate_message(str(e.get("message", "")))
        target = name
        while target and target not in known:
            target = target.rsplit(".", 1)[0] if "." in target else ""
        if target:
            out.add(target, message, known[target])
        else:
            out.add(None, message)
    return out


def text(form: FormData, name: str) -> str | None:
    """A text field, trimmed, its line breaks as the APIs count them (a browser sends a
    textarea's as CRLF: two characters each against the APIs' length limits); empty is None."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.replace("\r\n", "\n").strip()
    return value or None


def values(form: FormData) -> dict[str, Any]:
    """What was typed, to show again after an error (lists for repeated names)."""
    out: dict[str, Any] = {}
    for key in form:
        if key == "csrf_token":
            continue
        items = [v for v in form.getlist(key) if isinstance(v, str)]
        out[key] = items if len(items) > 1 else (items[0] if items else "")
    return out


def checked(form: FormData, name: str) -> bool:
    return form.get(name) in ("on", "true", "yes", "1")


def number(form: FormData, name: str) -> Any:
    """An integer when it reads as one; otherwise what was typed (the API names the error)."""
    value = text(form, name)
    if value is None:
        return None
    cleaned = value.replace(" ", "").replace("\u00a0", "")
    try:
        return int(cleaned)
    except ValueError:
        try:
            return float(cleaned.replace(",", "."))
        except ValueError:
            return value
