"""Reading a CSV list of companies (`POST /companies/import`): every row checked, each bad
row reported by its line number. Pure and CPU-bound: the service runs it off the event loop.

Bounded for hostile files: the body is at most `IMPORT_MAX_BYTES`, the rows at most
`IMPORT_MAX_ROWS` (reading stops at the first row over), the header at most
`MAX_COLUMNS` columns, a field at most the csv module's limit (128 KiB), and at most
`MAX_REPORTED_ERRORS` errors are kept (the rest are only counted).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from asf_kit.problems import field_errors
from asf_kit.rules import RuleError
from registry.domain import CompanyRegistration

IMPORT_COLUMNS = [
    "org_number", "name", "legal_form", "municipality_code", "industries", "description",
    "website", "contact_name", "contact_role", "contact_email", "contact_phone",
    "workforce_as_of", "employees_total", "engaged_total", "target_group_engaged",
    "training_places", "origin", "runs_business", "integration_purpose", "participation_form",
    "participation_description", "reinvests_profits", "independent_of_public_sector",
]
"""The CSV header an import expects; `industries` is separated by `;`."""
MAX_COLUMNS = 100
MAX_REPORTED_ERRORS = 100

_TRUE = {"true", "yes", "ja", "1", "x"}
_FALSE = {"false", "no", "nej", "0", ""}


def _refused(field_name: str, message: str) -> RuleError:
    return RuleError(422, "Validation failed", f"{field_name}: {message}",
                     errors=[{"field": field_name, "message": message}])


_MIDNIGHT = re.compile(r"^\s*(\d{4}-\d{2}-\d{2})[ T]00:00(:00(\.0+)?)?\s*$")


def _date_cell(value: str) -> str:
    """A date as a spreadsheet may export it: `2025-12-31 00:00:00` (a date cell saved with
    its time of day) is the date `2025-12-31`. Any other time is left for validation to
    refuse: it names a moment, not a day."""
    m = _MIDNIGHT.match(value)
    return m.group(1) if m else value


def _flag(value: str) -> bool | str:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    return value  # let validation name it


def _row_to_registration(row: dict[str, Any]) -> dict[str, Any]:
    def get(key: str) -> str:
        v = row.get(key)
        return v if isinstance(v, str) else ""

    def opt(key: str) -> str | None:
        return get(key).strip() or None

    contact = None
    if opt("contact_name"):
        contact = {"name": opt("contact_name"), "role": opt("contact_role"),
                   "email": opt("contact_email"), "phone": opt("contact_phone")}
    form = opt("participation_form")
    return {
        "org_number": get("org_number"),
        "name": get("name"),
        "legal_form": get("legal_form"),
        "municipality_code": get("municipality_code"),
        "industries": [t.strip() for t in get("industries").split(";") if t.strip()],
        "description": opt("description"),
        "website": opt("website"),
        "contacts": [contact] if contact else [],
        "workforce": {
            "as_of": _date_cell(get("workforce_as_of")),
            "employees_total": get("employees_total"),
            "engaged_total": get("engaged_total"),
            "target_group_engaged": get("target_group_engaged"),
        },
        "training_places": get("training_places"),
        "origin": get("origin"),
        "criteria": {
            "runs_business": _flag(get("runs_business")),
            "integration_purpose": _flag(get("integration_purpose")),
            "participation": (
                {"form": form, "description": opt("participation_description")} if form else None
            ),
            "reinvests_profits": _flag(get("reinvests_profits")),
            "independent_of_public_sector": _flag(get("independent_of_public_sector")),
        },
    }


@dataclass
class ImportCheck:
    """What reading the file found: the registrations of the good rows, and the bad rows."""

    registrations: list[CompanyRegistration] = field(default_factory=list)
    line_of: dict[str, int] = field(default_factory=dict)
    """org_number → the line it is on."""
    errors: list[dict[str, Any]] = field(default_factory=list)
    """The first `MAX_REPORTED_ERRORS`: `{"row": line, "field": ..., "message": ...}`."""
    error_count: int = 0
    bad_rows: set[int] = field(default_factory=set)

    def add_error(self, line: int, field_name: str, message: str) -> None:
        self.error_count += 1
        self.bad_rows.add(line)
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"row": line, "field": field_name, "message": message})


def read_import(raw: bytes, max_rows: int) -> ImportCheck:
    """Check every row of the file. Raises a 422 `RuleError` for a file that is not a CSV
    list at all (encoding, header, no rows, too many rows, broken quoting)."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise _refused("body", "the CSV must be UTF-8") from e
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        header = reader.fieldnames or []
    except csv.Error as e:
        raise _refused("body", f"line 1: {e}") from e
    if len(header) > MAX_COLUMNS:
        raise _refused("header", f"{len(header)} columns; at most {MAX_COLUMNS}")
    missing = [c for c in IMPORT_COLUMNS if c not in header]
    if missing:
        raise _refused("header", f"missing columns: {', '.join(missing)}")
    check = ImportCheck()
    rows = 0
    try:
        for row in reader:
            rows += 1
            if rows > max_rows:
                raise _refused("body", f"more than {max_rows} rows; split the file")
            _check_row(check, reader.line_num, row)
    except csv.Error as e:
        raise _refused("body", f"line {reader.line_num}: {e}") from e
    if rows == 0:
        raise _refused("body", "the file has no rows")
    return check


def _check_row(check: ImportCheck, line: int, row: dict[str, Any]) -> None:
    try:
        reg = CompanyRegistration.model_validate(_row_to_registration(row))
    except ValidationError as e:
        for fe in field_errors(e.errors()):
            check.add_error(line, fe.field, fe.message)
        return
    first = check.line_of.get(reg.org_number)
    if first is not None:
        check.add_error(line, "org_number", f"same org_number as row {first}")
        return
    check.line_of[reg.org_number] = line
    check.registrations.append(reg)
