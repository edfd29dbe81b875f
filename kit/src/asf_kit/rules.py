"""The error a domain rule raises. Plain Python, so pure domain modules can use it; the
HTTP layer turns it into a problem document with `asf_kit.problems.rule_problem`."""

from __future__ import annotations


class RuleError(Exception):
    """A rule said no; `status` is the HTTP status it maps to, `extra` what the caller can
    act on (`allowed` moves, `unmet_criteria`, `errors` naming fields …)."""

    def __init__(self, status: int, title: str, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail
        self.extra = extra
