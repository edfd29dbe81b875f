"""Charts drawn on the server as SVG: horizontal bars, one per row, labelled with words and
numbers, so the picture reads without colour and the same numbers stand in a table beside
it. No JavaScript."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from markupsafe import Markup

from web.i18n import format_number


@dataclass(frozen=True)
class Bar:
    label: str
    value: int | None
    """None: suppressed (a count too small to show without singling anybody out)."""


def bar_chart(title: str, bars: list[Bar], *, chart_id: str) -> Markup:
    longest = max((len(b.label) for b in bars), default=10)
    label_w = min(300, 24 + longest * 7)
    width, row_h, gap = label_w + 380, 28, 8
    values = [b.value for b in bars if b.value is not None]
    top = max(values, default=0) or 1
    bar_room = width - label_w - 60
    height = max(1, len(bars)) * (row_h + gap) + gap
    rows = []
    for i, b in enumerate(bars):
        y = gap + i * (row_h + gap)
        w = 0 if b.value is None else max(2 if b.value else 0, round(bar_room * b.value / top))
        shown = "–" if b.value is None else format_number(b.value)
        rows.append(
            f'<text x="{label_w - 8}" y="{y + row_h / 2 + 5}" text-anchor="end">'
            f"{escape(b.label)}</text>"
            f'<rect class="bar" x="{label_w}" y="{y}" width="{w}" height="{row_h}"></rect>'
            f'<text x="{label_w + w + 6}" y="{y + row_h / 2 + 5}">{escape(shown)}</text>')
    svg = (
        f'<svg class="chart" role="img" aria-labelledby="{chart_id}-title" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'xmlns="http://www.w3.org/2000/svg"><title id="{chart_id}-title">{escape(title)}'
        f"</title>{''.join(rows)}</svg>")
    return Markup(svg)  # noqa: S704 - every text in it is escaped above
