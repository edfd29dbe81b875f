"""The roles a token may carry (SPEC 2); a module of its own so the CLI reads them without
loading the HTTP stack."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    CASE_WORKER = "case_worker"
    REGISTRY_OFFICER = "registry_officer"
    COMPANY_REP = "company_rep"
    ANALYST = "analyst"
    AUDITOR = "auditor"
