"""Email templates: Jinja2 in a sandbox, Swedish and English, each a subject, a text and an
HTML part, kept in versions. Pure rules, no I/O.

A version is a whole template (every locale, every part). Releases add versions from the
packaged files; an analyst adds them over HTTP. A version is used only once activated, and
rolling back is activating an earlier one. A new version must render with its event's
sample data, and when it does not the error names the locale, the part and the line.
"""

from __future__ import annotations

import operator
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from types import FrameType, TracebackType
from typing import Any, Literal

from jinja2 import StrictUndefined, TemplateSyntaxError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import SandboxedEnvironment
from pydantic import BaseModel, ConfigDict, Field, field_validator

from asf_kit.rules import RuleError

Locale = Literal["sv", "en"]
LOCALES: tuple[Locale, ...] = ("sv", "en")
Part = Literal["subject", "text", "html"]
PARTS: tuple[Part, ...] = ("subject", "text", "html")
VersionSource = Literal["release", "analyst"]


class TemplateText(BaseModel):
    """One locale of a template version: what an analyst writes."""

    model_config = ConfigDict(extra="forbid")

    subject: str = Field(min_length=1, max_length=1_000)
    text: str = Field(min_length=1, max_length=100_000)
    html: str = Field(min_length=1, max_length=200_000)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: str) -> str:
        if "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value


class TemplateVersionIn(BaseModel):
    """A new version of a template: both languages, and why it was written."""

    model_config = ConfigDict(extra="forbid")

    sv: TemplateText
    en: TemplateText
    note: str | None = Field(default=None, max_length=1_000,
                             description="What changed, for whoever reads the history")

    @field_validator("note", mode="after")
    @classmethod
    def _no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("may not contain NUL characters")
        return value

    def texts(self) -> dict[str, TemplateText]:
        return {"sv": self.sv, "en": self.en}


class TemplateVersion(BaseModel):
    """A stored version of a template, in every locale it has."""

    name: str
    version: int
    active: bool
    source: VersionSource = Field(description="`release`: shipped with the service")
    created_by: str | None = Field(description="The analyst's `sub`; none for a release")
    note: str | None
    created_at: datetime
    event_type: str | None = None
    sv: TemplateText | None
    en: TemplateText | None


class Template(BaseModel):
    """One locale of one version, as sent or previewed."""

    name: str
    locale: Locale
    version: int
    subject: str
    text: str
    html: str
    event_type: str | None = None
    created_at: datetime | None = None


def pick_locale(available: dict[str, Template], wanted: str) -> Template | None:
    """The contact's language when the template has it, Swedish otherwise."""
    return available.get(wanted) or available.get("sv") or next(iter(available.values()), None)


# --- rendering in the sandbox ---------------------------------------------------------------

_MAX_REPEAT = 10_000
_MAX_EXPONENT = 100
MAX_OUTPUT = 1_000_000
"""Characters one rendered part may have."""


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox (no attribute escapes, ranges capped), plus caps on `*` and `**` so a
    template cannot make a gigabyte string or a huge number while it is checked."""

    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Any, operator_: str, left: Any, right: Any) -> Any:
        if operator_ == "**":
            if isinstance(right, int | float) and abs(right) > _MAX_EXPONENT:
                raise SecurityError(f"an exponent above {_MAX_EXPONENT} is not allowed")
            return operator.pow(left, right)
        for a, b in ((left, right), (right, left)):
            if isinstance(a, str | list | tuple) and isinstance(b, int) and b > _MAX_REPEAT:
                raise SecurityError(f"repeating more than {_MAX_REPEAT} times is not allowed")
        return operator.mul(left, right)


_text_env = _Sandbox(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)
_html_env = _Sandbox(undefined=StrictUndefined, autoescape=True)


def _env(part: Part) -> SandboxedEnvironment:
    return _html_env if part == "html" else _text_env


@dataclass(frozen=True)
class TemplateFault:
    """Where and why one part of one locale does not render."""

    locale: str
    part: Part
    line: int | None
    message: str

    @property
    def field(self) -> str:
        return f"{self.locale}.{self.part}"

    def describe(self) -> str:
        where = f"line {self.line}: " if self.line is not None else ""
        return f"{where}{self.message}"


def _template_line(tb: TracebackType | None) -> int | None:
    """The template line an error was raised on: Jinja rewrites tracebacks so that frames of
    the template itself carry its file name `<template>` and its line numbers."""
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == "<template>":
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def render_part(locale: str, part: Part, source: str, context: dict[str, Any]) -> str:
    """Render one part, or raise `RenderError` naming the locale, the part and the line."""
    try:
        out: list[str] = []
        size = 0
        for chunk in _env(part).from_string(source).generate(context):
            size += len(chunk)
            if size > MAX_OUTPUT:
                raise SecurityError(f"the {part} grows beyond {MAX_OUTPUT} characters")
            out.append(chunk)
        return "".join(out)
    except TemplateSyntaxError as e:
        raise RenderError(TemplateFault(locale, part, e.lineno, e.message or str(e))) from e
    except Exception as e:  # anything a template can do wrong: undefined, unsafe, 1/0 ...
        message = f"{type(e).__name__}: {e}"
        raise RenderError(TemplateFault(locale, part, _template_line(e.__traceback__),
                                        message)) from e


class RenderError(Exception):
    """A template part could not be rendered with the values given."""

    def __init__(self, fault: TemplateFault) -> None:
        super().__init__(f"{fault.field}: {fault.describe()}")
        self.fault = fault


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


def render(t: Template, context: dict[str, Any]) -> Rendered:
    """Subject on one line (no header injection), text unescaped, HTML autoescaped."""
    subject = render_part(t.locale, "subject", t.subject, context)
    text = render_part(t.locale, "text", t.text, context)
    html = render_part(t.locale, "html", t.html, context)
    return Rendered(subject=" ".join(subject.split())[:300], text=text, html=html)


class TooSlow(SecurityError):
    """A template kept rendering past its time limit."""


@contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    """Stop a template that runs longer than `seconds`, on the line it has reached: a trace
    function in this thread, on the template's own frames only, raises there once the
    deadline has passed (so even an empty loop of loops ends)."""
    deadline = time.monotonic() + seconds

    def on_line(frame: FrameType, event: str, arg: Any) -> Any:
        if time.monotonic() > deadline:
            raise TooSlow(f"still rendering after {seconds:g} s (a loop too long?)")
        return on_line

    def on_call(frame: FrameType, event: str, arg: Any) -> Any:
        return on_line if frame.f_code.co_filename == "<template>" else None

    previous = sys.gettrace()
    sys.settrace(on_call)
    try:
        yield
    finally:
        sys.settrace(previous)


CHECK_SECONDS = 2.0
"""How long checking one part of a new version may take."""


def render_faults(texts: dict[str, TemplateText], context: dict[str, Any],
                  seconds: float = CHECK_SECONDS) -> list[TemplateFault]:
    """Every part of every locale that does not render with `context`, each within
    `seconds` (empty: all do)."""
    faults = []
    for locale, t in texts.items():
        for part in PARTS:
            try:
                with _time_limit(seconds):
                    render_part(locale, part, getattr(t, part), context)
            except RenderError as e:
                faults.append(e.fault)
    return faults


class TemplateDoesNotRender(RuleError):
    """A 422 naming each part that fails, with its locale and line."""

    def __init__(self, name: str, faults: list[TemplateFault]) -> None:
        super().__init__(
            422, "Validation failed",
            f"template {name} does not render with its sample data: "
            + "; ".join(f"{f.field}: {f.describe()}" for f in faults),
        )
        self.faults = faults


# --- the template's versions ----------------------------------------------------------------


@dataclass(frozen=True)
class ReleaseDecision:
    """What a release does with its packaged text of a template."""

    store: bool
    activate: bool


@dataclass(frozen=True)
class TemplateHistory:
    """The aggregate: one template's version numbers, where each came from, the one in use."""

    name: str
    sources: dict[int, VersionSource]
    active: int | None

    @property
    def next_version(self) -> int:
        return max(self.sources, default=0) + 1

    def add(self, texts: dict[str, TemplateText], sample: dict[str, Any]) -> int:
        """The number of a new version, once every part renders with the sample data."""
        faults = render_faults(texts, sample)
        if faults:
            raise TemplateDoesNotRender(self.name, faults)
        return self.next_version

    def activate(self, version: int) -> int:
        """Use `version` from now on (an earlier one rolls back); 404 when it does not exist."""
        if version not in self.sources:
            raise RuleError(404, "Not found",
                            f"template {self.name} has no version {version}",
                            versions=sorted(self.sources))
        return version

    def release(self, same_as_last_release: bool) -> ReleaseDecision:
        """A release stores its text when it changed since the last release, and puts it in
        use unless an analyst's version is in use (theirs stays until they switch)."""
        if same_as_last_release and self.active is not None:
            return ReleaseDecision(store=False, activate=False)
        keep_analysts = self.active is not None and self.sources.get(self.active) == "analyst"
        return ReleaseDecision(store=not same_as_last_release, activate=not keep_analysts)
