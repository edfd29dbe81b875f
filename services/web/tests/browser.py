"""Driving Debian's Chromium with Playwright: launching it, signing in, moving by keyboard,
and the checks every page gets (axe-core, 320 px without horizontal scrolling)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]


def chromium_missing() -> str | None:
    if not CHROMIUM.exists():
        return ("Debian's chromium is not installed (apt-get install -y chromium); "
                "the browser tests drive /usr/bin/chromium")
    if shutil.which("chromium") is None and not CHROMIUM.exists():
        return "chromium not found"
    return None


@contextmanager
def launched() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def sign_in_as(page: Any, base_url: str, person: dict[str, str], next_url: str = "/") -> None:
    """Sign in through the development sign-in form, as a person would."""
    page.goto(f"{base_url}/dev-login?next={next_url}")
    form = page.locator("form", has=page.locator('input[name="sub"][type="text"]'))
    form.get_by_label("Användar-id (sub)").fill(person["sub"])
    form.get_by_label("Namn").fill(person.get("name", ""))
    form.get_by_label("Roll").select_option(person["role"])
    if person.get("municipality_code"):
        form.get_by_label("Kommunkod").fill(person["municipality_code"])
    if person.get("company_id"):
        form.get_by_label("Företagets id").fill(person["company_id"])
    form.get_by_role("button", name="Logga in").click()
    page.wait_for_load_state()


def tab_to(page: Any, locator: Any, limit: int = 80) -> None:
    """Press Tab until `locator` has the focus, as someone without a mouse would."""
    handle = locator.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement === el", handle):
            return
    raise AssertionError(f"could not reach {locator} with the Tab key")


SERIOUS = ("serious", "critical")


def axe_violations(page: Any) -> list[dict[str, Any]]:
    from axe_playwright_python.sync_playwright import Axe

    results = Axe().run(page)
    return [v for v in results.response["violations"] if v.get("impact") in SERIOUS]


def describe(violations: list[dict[str, Any]]) -> str:
    return "\n".join(f"{v['id']} ({v['impact']}): {v['help']} — "
                     f"{[n['target'] for n in v['nodes']][:5]}" for v in violations)


def horizontal_overflow(page: Any) -> int:
    """How many pixels the page is wider than the window (0 when it fits)."""
    return int(page.evaluate(
        "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"))


def skip_without_chromium() -> None:
    reason = chromium_missing()
    if reason:
        pytest.skip(reason)


def choose_radio(page: Any, target: Any, limit: int = 80) -> None:
    """Tab into the radio group of `target`, then move with the arrow keys until it is
    chosen (a radio group is one Tab stop, as in every browser)."""
    handle = target.element_handle()
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(el) => document.activeElement && document.activeElement.type === "
                         "'radio' && document.activeElement.name === el.name", handle):
            break
    else:
        raise AssertionError(f"could not reach the radio group of {target} with Tab")
    for _ in range(limit):
        if page.evaluate("(el) => document.activeElement === el", handle):
            page.keyboard.press("Space")
            return
        page.keyboard.press("ArrowDown")
    raise AssertionError(f"could not choose {target} with the arrow keys")


def too_wide(page: Any) -> list[str]:
    """The outermost elements that stick out to the right of the window (for a message)."""
    found: list[str] = page.evaluate("""() => {
      const w = document.documentElement.clientWidth, out = [];
      for (const el of document.querySelectorAll('body *')) {
        const r = el.getBoundingClientRect();
        if (r.right > w + 1 && !el.closest('.table-wrap') &&
            !(el.parentElement && el.parentElement.getBoundingClientRect().right > w + 1))
          out.push(el.tagName + '.' + el.className + ' ' + (el.textContent || '').slice(0, 60));
      }
      return out.slice(0, 5);
    }""")
    return found
