"""Every metric a dashboard or an alert rule names is one the services really export: the
services run as processes, do real work (a company registered, its event consumed by
casework and notifications, an email accepted by an SMTP server in this process, a poison
message parked), and their `/metrics` is scraped and compared with the names used in
deploy/monitoring."""

from __future__ import annotations

import importlib.util
import json
import random
import re
from functools import partial
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from asf_contracts.topology import ServiceQueues
from asf_testing import (
    DATA_KEY,
    SmtpServer,
    auth,
    delete_queues,
    eventually,
    fresh_database,
    org_number,
    service_process,
    unique_namespace,
)

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
REP = auth("company_rep", sub="metrics-rep")
ANALYST = auth("analyst", sub="metrics-analyst")

# --- the names used in PromQL ----------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and",
             "or", "unless", "offset", "inf", "nan",
             # aggregations, which may stand before `by (...)` instead of a parenthesis
             "sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk",
             "bottomk", "quantile", "count_values"}
_GENERATED = {"up"}  # written by Prometheus itself, not by a service


def metric_names(expr: str) -> set[str]:
    """The metric names an expression reads (not functions, labels, keywords or numbers)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)            # strings
    text = re.sub(r"\{[^}]*\}", "", text)                        # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)                       # ranges and subqueries
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1",
                  text)                                          # grouping labels
    names = set()
    for m in re.finditer(r"(?<![\w.:])([a-zA-Z_:][\w:]*)(\s*\()?", text):
        name, call = m.group(1), m.group(2)
        if call or name.lower() in _KEYWORDS:
            continue
        names.add(name)
    return names


def test_metric_names_are_read_from_promql() -> None:
    expr = ('histogram_quantile(0.99, sum by (le, job) (rate(x_seconds_bucket{job="a", '
            'route!~"/b|/c"}[5m]))) / on (job) group_left max(up) > bool 1e3 '
            "and avg_over_time((y_age > bool 60)[1h:1m]) or slo:z:rate5m")
    assert metric_names(expr) == {"x_seconds_bucket", "up", "y_age", "slo:z:rate5m"}


def rules() -> tuple[set[str], set[str]]:
    """(names the rules read, names the rules record)."""
    read, recorded = set(), set()
    for path in (MONITORING / "rules").glob("*.yaml"):
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                read |= metric_names(rule["expr"])
                if "record" in rule:
                    recorded.add(rule["record"])
    return read, recorded


def dashboard_names(name: str) -> set[str]:
    doc = json.loads((MONITORING / "dashboards" / f"{name}.json").read_text())
    return {n for panel in doc["panels"] for t in panel.get("targets", [])
            for n in metric_names(t["expr"])}


def exported(text: str) -> dict[str, list[Any]]:
    """Metric name → samples, as a scrape sees them. A family declared without samples yet
    (a labelled metric nobody has touched) still counts as exported, with no samples."""
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        names = {family.name}
        if family.type == "counter":
            names = {f"{family.name}_total"}
        elif family.type == "histogram":
            names = {f"{family.name}_{s}" for s in ("bucket", "count", "sum")}
        for n in names:
            found.setdefault(n, [])
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


def value(samples: list[Any], **labels: str) -> float:
    return sum(s.value for s in samples if all(s.labels.get(k) == v for k, v in labels.items()))


# --- the services at work --------------------------------------------------------------------


def company() -> dict[str, Any]:
    return {
        "org_number": org_number(), "name": f"Mätbolaget {random.randint(0, 10**9)}",
        "legal_form": "ekonomisk_forening", "municipality_code": "0180",
        "industries": ["cleaning"], "training_places": 3, "origin": "existing",
        "contacts": [{"name": "Mät Kontakt", "role": "manager",
                      "email": "contact@metrics.example.se"}],
        "workforce": {"as_of": "2026-01-01", "employees_total": 2, "engaged_total": 6,
                      "target_group_engaged": 3},
        "criteria": {"runs_business": True, "integration_purpose": True,
                     "participation": {"form": "ownership"}, "reinvests_profits": True,
                     "independent_of_public_sector": True},
    }


until = partial(eventually, within=60.0, every=0.3)


async def scrape(client: httpx.AsyncClient, base_url: str) -> dict[str, list[Any]]:
    r = await client.get(f"{base_url}/metrics")
    assert r.status_code == 200
    return exported(r.text)


@pytest.mark.timeout(240)
async def test_every_metric_a_dashboard_or_rule_names_is_exported(
    postgres_url: str, broker_url: str, tmp_path: Path
) -> None:
    namespace = unique_namespace()
    smtp = SmtpServer()
    smtp.up()
    common = {"BROKER_URL": broker_url, "QUEUE_NAMESPACE": namespace, "APP_ENV": "development",
              "RELAY_POLL_INTERVAL": "0.2", "FOLLOW_UP_SWEEP_INTERVAL": "0"}
    migrations = {s: ROOT / "services" / s / "migrations"
                  for s in ("registry", "casework", "notifications")}
    try:
        async with (
            fresh_database(postgres_url, "metrics_registry", migrations["registry"]) as reg_db,
            fresh_database(postgres_url, "metrics_casework", migrations["casework"]) as cw_db,
            fresh_database(postgres_url, "metrics_notifications",
                           migrations["notifications"]) as nt_db,
            service_process("registry.cli", {**common, "DATABASE_URL": reg_db},
                            tmp_path / "registry.log") as registry,
            service_process("casework.cli", {**common, "DATABASE_URL": cw_db,
                                             "CASEWORK_DATA_KEY": DATA_KEY},
                            tmp_path / "casework.log") as casework,
            service_process("notifications.cli", {
                **common, "DATABASE_URL": nt_db, "SMTP_HOST": "127.0.0.1",
                "SMTP_PORT": str(smtp.port), "SMTP_TLS": "none", "SWEEPER_INTERVAL": "0.5",
            }, tmp_path / "notifications.log") as notifications,
            httpx.AsyncClient(timeout=30) as client,
        ):
            # Work that makes each metric speak: HTTP, outbox, consumers, SMTP, dead letters.
            r = await client.post(f"{registry.base_url}/companies", json=company(), headers=REP)
            assert r.status_code == 201, r.text
            async def receipt_sent() -> bool:
                return bool(smtp.to("contact@metrics.example.se"))

            await until(receipt_sent, "the receipt email")
            connection = await aio_pika.connect(broker_url)
            async with connection:
                channel = await connection.channel()
                await channel.default_exchange.publish(
                    aio_pika.Message(b"not an event", message_id="metrics-poison"),
                    routing_key=ServiceQueues(service=namespace + "casework").main)

            async def dead_letter_seen() -> bool:
                samples = (await scrape(client, casework.base_url))["broker_queue_messages"]
                return value(samples, kind="dead_letter") == 1

            await until(dead_letter_seen, "the parked message in casework's metrics")

            async def email_recorded() -> bool:
                samples = (await scrape(client, notifications.base_url))
                return value(samples["notifications_email_delivery_seconds_count"]) >= 1

            await until(email_recorded, "the email's latency in notifications' metrics")

            scraped = {name: await scrape(client, proc.base_url) for name, proc in (
                ("registry", registry), ("casework", casework),
                ("notifications", notifications))}
    finally:
        smtp.down()
        for service in ("casework", "notifications"):
            await delete_queues(broker_url, ServiceQueues(service=namespace + service))

    read, recorded = rules()
    everything = set().union(*(set(s) for s in scraped.values()))
    missing = read - recorded - _GENERATED - everything
    assert not missing, f"rules read metrics nobody exports: {missing}"
    for job, names in scraped.items():
        missing = dashboard_names(job) - recorded - _GENERATED - set(names)
        assert not missing, f"the {job} dashboard reads metrics {job} does not export: {missing}"
    missing = dashboard_names("overview") - recorded - _GENERATED - everything
    assert not missing, f"the overview reads metrics nobody exports: {missing}"

    # The state gauges say what is true right now.
    for job, names in scraped.items():
        checks = {s.labels["check"]: s.value for s in names["readiness_check"]}
        assert checks and set(checks.values()) == {1.0}, (job, checks)
    for job in ("registry", "casework"):
        assert value(scraped[job]["outbox_oldest_age_seconds"]) < 60
        assert scraped[job]["outbox_backlog"]
    casework_queues = scraped["casework"]["broker_queue_messages"]
    assert value(casework_queues, kind="dead_letter") == 1
    assert value(scraped["casework"]["broker_queue_consumers"], kind="main") >= 1
    assert value(scraped["notifications"]["broker_queue_messages"], kind="dead_letter") == 0
    assert value(scraped["registry"]["outbox_events_published_total"]) >= 1
    assert value(scraped["notifications"]["notifications_oldest_due_delivery_age_seconds"]) < 60
    assert scraped["notifications"]["notifications_oldest_due_delivery_age_seconds"]
    for job in ("casework", "notifications"):
        assert value(scraped[job]["messages_event_age_seconds_count"],
                     event_type="registry.company.registered") >= 1
        assert value(scraped[job]["messages_last_consumed_timestamp_seconds"]) > 0


@pytest.mark.timeout(120)
async def test_the_web_apps_metrics_are_exported(tmp_path: Path) -> None:
    if importlib.util.find_spec("web") is None:
        pytest.skip("services/web has not landed in this branch yet")
    env = {"APP_ENV": "development", "SESSION_SECRET": "metrics-" + "s" * 40,
           "REGISTRY_URL": "http://127.0.0.1:9", "CASEWORK_URL": "http://127.0.0.1:9",
           "NOTIFICATIONS_URL": "http://127.0.0.1:9"}
    async with (service_process("web.cli", env, tmp_path / "web.log", ready=False) as web,
                httpx.AsyncClient(timeout=10) as client):
        async def answers() -> bool:
            try:
                return (await client.get(f"{web.base_url}/healthz")).status_code == 200
            except httpx.HTTPError:
                return False

        await until(answers, "the web app", within=30)
        await client.get(f"{web.base_url}/")
        names = await scrape(client, web.base_url)
    _, recorded = rules()
    missing = dashboard_names("web") - recorded - _GENERATED - set(names)
    assert not missing, f"the web dashboard reads metrics the web app does not export: {missing}"
