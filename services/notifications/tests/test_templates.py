"""Templates that change without a release: versions over HTTP, checked in the sandbox with
the event's sample data, activated explicitly, rolled back by activating an earlier one; a
delivery keeps the version it was written with. Real PostgreSQL, RabbitMQ and SMTP."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from asf_contracts import casework as cw
from asf_testing import auth

NAME = "plan_review_due"  # no other test looks at this template's text


def texts(subject: str) -> dict[str, Any]:
    return {
        "sv": {"subject": f"{subject} {{{{ reference }}}}", "text": "{{ link }}\n",
               "html": "<p>{{ link }}</p>"},
        "en": {"subject": f"EN {subject} {{{{ reference }}}}", "text": "{{ link }}\n",
               "html": "<p>{{ link }}</p>"},
    }


async def versions(client: httpx.AsyncClient, analyst: dict[str, str], name: str = NAME,
                   **params: Any) -> dict[str, Any]:
    r = await client.get(f"/templates/{name}/versions", params=params, headers=analyst)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
async def active_restored(client: httpx.AsyncClient, analyst: dict[str, str]
                          ) -> AsyncIterator[int]:
    """The version in use before the test, put back afterwards."""
    [active] = [v for v in (await versions(client, analyst))["items"] if v["active"]]
    yield active["version"]
    r = await client.post(f"/templates/{NAME}/versions/{active['version']}/activation",
                          headers=analyst)
    assert r.status_code == 200, r.text


async def test_the_shipped_version_is_listed_and_in_use(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    body = await versions(client, analyst, "follow_up_due")
    [first] = [v for v in body["items"] if v["version"] == 1]
    assert first["source"] == "release" and first["created_by"] is None
    assert first["event_type"] == cw.FOLLOW_UP_DUE
    assert "Uppföljning" in first["sv"]["subject"] and "Follow-up" in first["en"]["subject"]
    assert [v["active"] for v in body["items"]].count(True) == 1
    r = await client.get("/templates/no_such_template/versions", headers=analyst)
    assert r.status_code == 404


async def test_a_version_that_does_not_render_is_refused_naming_locale_part_and_line(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    before = await versions(client, analyst)
    body = texts("Planen")
    body["sv"]["html"] = "<p>Hej</p>\n<p>{{ link }</p>"  # a syntax error on line 2
    body["en"]["text"] = "Line one\nLine two\n{{ participant_name }}\n"  # not in the sample
    body["en"]["subject"] = "{{ ''.__class__.__mro__ }}"  # a sandbox escape
    r = await client.post(f"/templates/{NAME}/versions", json=body, headers=analyst)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = {e["field"]: e for e in r.json()["errors"]}
    assert set(errors) == {"sv.html", "en.text", "en.subject"}
    assert (errors["sv.html"]["locale"], errors["sv.html"]["part"],
            errors["sv.html"]["line"]) == ("sv", "html", 2)
    assert errors["sv.html"]["message"].startswith("line 2: unexpected '}'")
    assert errors["en.text"]["line"] == 3 and "participant_name" in errors["en.text"]["message"]
    assert errors["en.subject"]["line"] == 1 and "unsafe" in errors["en.subject"]["message"]
    assert "sv.html" in r.json()["detail"]
    assert await versions(client, analyst) == before  # nothing half-saved


@pytest.mark.parametrize(("body", "fields"), [
    ({"sv": texts("x")["sv"]}, {"en"}),
    ({**texts("x"), "sv": {"subject": "", "text": "t", "html": "h"}}, {"sv.subject"}),
    ({**texts("x"), "en": {"subject": "s", "text": "t"}}, {"en.html"}),
    ({**texts("x"), "de": texts("x")["sv"]}, {"de"}),
    ({**texts("x"), "sv": {"subject": "s\u0000", "text": "t", "html": "h"}}, {"sv.subject"}),
    ({**texts("x"), "note": "n" * 1001}, {"note"}),
    ({**texts("x"), "note": "a\u0000b"}, {"note"}),  # found by schemathesis: was a 500
])
async def test_bad_version_bodies_name_each_field(
    client: httpx.AsyncClient, analyst: dict[str, str], body: dict[str, Any], fields: set[str]
) -> None:
    r = await client.post(f"/templates/{NAME}/versions", json=body, headers=analyst)
    assert r.status_code == 422, r.text
    assert {e["field"] for e in r.json()["errors"]} == fields


async def test_versions_only_of_templates_that_exist(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    r = await client.post("/templates/not_a_template/versions", json=texts("x"),
                          headers=analyst)
    assert r.status_code == 404
    r = await client.post("/templates/Bad-Name/versions", json=texts("x"), headers=analyst)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "name"
    r = await client.post(f"/templates/{NAME}/versions/999/activation", headers=analyst)
    assert r.status_code == 404 and "no version 999" in r.json()["detail"]
    r = await client.post(f"/templates/{NAME}/versions/0/activation", headers=analyst)
    assert r.status_code == 422
    r = await client.post("/templates/nope/versions/1/activation", headers=analyst)
    assert r.status_code == 404
    r = await client.post(f"/templates/{NAME}/versions", json=texts("x"),
                          headers=auth("registry_officer"))
    assert r.status_code == 403


async def test_a_version_is_used_once_activated_and_each_delivery_keeps_its_own(
    client: httpx.AsyncClient, analyst: dict[str, str], publish: Any, new_contact: Any,
    smtp: Any, eventually: Any, sent: Any, active_restored: int,
) -> None:
    mark = uuid.uuid4().hex[:6]
    subject = f"Planen {mark}"
    r = await client.post(f"/templates/{NAME}/versions",
                          json={**texts(subject), "note": "kortare ämnesrad"},
                          headers=auth("analyst", sub="analyst-tpl"))
    assert r.status_code == 201, r.text
    new = r.json()
    assert r.headers["Location"] == f"/templates/{NAME}/versions/{new['version']}"
    assert new["version"] > active_restored and not new["active"]
    assert (new["source"], new["created_by"], new["note"]) == (
        "analyst", "analyst-tpl", "kortare ämnesrad")
    assert new["sv"]["subject"] == f"{subject} {{{{ reference }}}}"

    r = await client.post(f"/templates/{NAME}/preview",
                          json={"version": new["version"], "locale": "en"}, headers=analyst)
    assert r.status_code == 200 and r.json()["subject"].startswith(f"EN {subject} ")
    r = await client.post(f"/templates/{NAME}/preview", json={"version": 999}, headers=analyst)
    assert r.status_code == 404

    worker = f"cw-{mark}"
    contact = await new_contact("case_worker", subject=worker, municipality_code="0180")

    async def review_due() -> tuple[Any, dict[str, Any], list[Any]]:
        participant = uuid.uuid4()
        event = await publish(cw.PLAN_REVIEW_DUE, {
            "participant_id": str(participant), "municipality_code": "0180",
            "assigned_to": worker, "review_date": "2026-05-01", "plan_version": 2})
        delivery = await eventually(lambda: sent(event_id=event.event_id), what="sent")
        ref = participant.hex[:8].upper()
        mails = await eventually(lambda: smtp.to(contact["email"], ref), what="the email")
        return event, delivery, mails

    # Not activated yet: the version in use writes the email.
    _, before, [mail] = await review_due()
    assert before["template_version"] == active_restored
    assert mail["Subject"].startswith("Genomförandeplanen ska följas upp")

    r = await client.post(f"/templates/{NAME}/versions/{new['version']}/activation",
                          headers=analyst)
    assert r.status_code == 200 and r.json()["active"] is True
    listed = (await versions(client, analyst))["items"]
    assert [v["version"] for v in listed if v["active"]] == [new["version"]]
    r = await client.get("/templates", headers=analyst)
    assert {(t["locale"], t["version"]) for t in r.json()["items"] if t["name"] == NAME} == {
        ("sv", new["version"]), ("en", new["version"])}

    _, after, [mail] = await review_due()
    assert after["template_version"] == new["version"]
    assert mail["Subject"].startswith(f"{subject} ")
    r = await client.get(f"/deliveries/{before['id']}", headers=analyst)
    assert r.json()["template_version"] == active_restored  # the earlier one keeps its own

    # Rolling back is activating the earlier version; activating twice changes nothing.
    for _ in range(2):
        r = await client.post(f"/templates/{NAME}/versions/{active_restored}/activation",
                              headers=analyst)
        assert r.status_code == 200 and r.json()["version"] == active_restored
    _, rolled_back, [mail] = await review_due()
    assert rolled_back["template_version"] == active_restored
    assert mail["Subject"].startswith("Genomförandeplanen ska följas upp")


async def test_versions_page_newest_first(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    for i in range(3):
        body = {locale: {"subject": f"Sida {i} {{{{ title }}}}", "text": "{{ link }}",
                         "html": "<p>{{ link }}</p>"} for locale in ("sv", "en")}
        r = await client.post("/templates/contract_awarded_company/versions", json=body,
                              headers=analyst)
        assert r.status_code == 201, r.text
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = await versions(client, analyst, "contract_awarded_company", **params)
        seen += [v["version"] for v in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(seen, reverse=True) and seen[-1] == 1 and len(seen) >= 4
    r = await client.get("/templates/contract_awarded_company/versions",
                         params={"cursor": "bm9wZQ"}, headers=analyst)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"


async def test_a_template_that_would_not_finish_or_grows_too_big_is_refused(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    body = texts("Loop")
    body["sv"]["text"] = ("{% for a in range(99999) %}{% for b in range(99999) %}"
                          "{% endfor %}{% endfor %}")
    r = await client.post(f"/templates/{NAME}/versions", json=body, headers=analyst)
    assert r.status_code == 422, r.text
    [error] = r.json()["errors"]
    assert (error["field"], error["line"]) == ("sv.text", 1)
    assert "still rendering after" in error["message"]
    body = texts("Big")
    body["en"]["html"] = "{% for a in range(9999) %}{{ 'x' * 9999 }}{% endfor %}"
    r = await client.post(f"/templates/{NAME}/versions", json=body, headers=analyst)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "en.html"
    assert "grows beyond" in r.json()["errors"][0]["message"]


async def test_version_numbers_beyond_what_is_stored_are_refused(
    client: httpx.AsyncClient, analyst: dict[str, str]
) -> None:
    """Found by schemathesis: a version past PostgreSQL's integer was a 500."""
    huge = 42083445018
    r = await client.post(f"/templates/{NAME}/preview", json={"version": huge},
                          headers=analyst)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "version"
    r = await client.post(f"/templates/{NAME}/versions/{huge}/activation", headers=analyst)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "version"
    from asf_kit.pagination import encode_cursor

    r = await client.get(f"/templates/{NAME}/versions",
                         params={"cursor": encode_cursor([huge])}, headers=analyst)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "cursor"
