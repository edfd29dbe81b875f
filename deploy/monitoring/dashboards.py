"""Write the Grafana dashboards (`dashboards/*.json`): one per service and an overview.

    uv run python deploy/monitoring/dashboards.py          # write
    uv run python deploy/monitoring/dashboards.py --check  # fail when they have drifted

Import them in Grafana (Dashboards, Import) or provision the folder; each asks for its
Prometheus data source. `job` is the service (see prometheus.yaml).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

TARGET = Path(__file__).parent / "dashboards"
OPS = '"/healthz|/readyz|/metrics"'
APIS = ("registry", "casework", "notifications")
PUBLISHERS = ("registry", "casework")
CONSUMERS = ("casework", "notifications")

Panel = tuple[str, str, list[tuple[str, str]]]
"""(title, unit, [(PromQL, legend)])."""


def traffic(job: str) -> list[Panel]:
    sel = f'job="{job}", route!~{OPS}'
    return [
        ("Requests per second by route", "reqps",
         [(f"sum by (route) (rate(http_requests_total{{{sel}}}[5m]))", "{{route}}")]),
        ("Errors: share of 5xx and 4xx", "percentunit", [
            (f'sum(rate(http_requests_total{{{sel}, status=~"5.."}}[5m])) '
             f"/ sum(rate(http_requests_total{{{sel}}}[5m]))", "5xx"),
            (f'sum(rate(http_requests_total{{{sel}, status=~"4.."}}[5m])) '
             f"/ sum(rate(http_requests_total{{{sel}}}[5m]))", "4xx"),
        ]),
        ("Latency (p50, p95, p99)", "s", [
            (f"histogram_quantile({q}, sum by (le) "
             f"(rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))", f"p{int(q * 100)}")
            for q in (0.5, 0.95, 0.99)
        ]),
        ("API service level: share of requests 5xx or over 300 ms (budget 0.5 %)",
         "percentunit", [
             (f'slo:api_error_ratio:rate{w}{{job="{job}"}}', w) for w in ("5m", "1h", "1d")
         ]),
        ("Readiness checks (1 = ready)", "none",
         [(f'min by (check) (readiness_check{{job="{job}"}})', "{{check}}")]),
    ]


def outbox(job: str) -> list[Panel]:
    return [
        ("Outbox backlog (events not yet published)", "none",
         [(f'max(outbox_backlog{{job="{job}"}})', "waiting")]),
        ("Oldest unpublished event (SLO: under 60 s)", "s",
         [(f'max(outbox_oldest_age_seconds{{job="{job}"}})', "age")]),
        ("Events published per second", "ops",
         [(f'sum by (event_type) (rate(outbox_events_published_total{{job="{job}"}}[5m]))',
           "{{event_type}}")]),
    ]


def consumer(job: str) -> list[Panel]:
    return [
        ("Messages consumed per second by outcome", "ops",
         [(f'sum by (outcome) (rate(messages_consumed_total{{job="{job}"}}[5m]))',
           "{{outcome}}")]),
        ("Consumer lag: messages waiting in the queues", "none",
         [(f'max by (queue) (broker_queue_messages{{job="{job}", kind=~"main|retry"}})',
           "{{queue}}")]),
        ("Consumer lag: event age when applied (p95)", "s",
         [(f"histogram_quantile(0.95, sum by (le, event_type) "
           f'(rate(messages_event_age_seconds_bucket{{job="{job}"}}[5m])))', "{{event_type}}")]),
        ("Dead-letter queue depth", "none",
         [(f'max by (queue) (broker_queue_messages{{job="{job}", kind="dead_letter"}})',
           "{{queue}}")]),
        ("Handling time per message (p95)", "s",
         [(f"histogram_quantile(0.95, sum by (le, event_type) "
           f'(rate(message_handling_seconds_bucket{{job="{job}"}}[5m])))', "{{event_type}}")]),
        ("Seconds since a message was last taken", "s",
         [(f'time() - max by (instance) (messages_last_consumed_timestamp_seconds{{job="{job}"}})',
           "{{instance}}")]),
    ]


def deliveries() -> list[Panel]:
    job = 'job="notifications"'
    return [
        ("Deliveries by status", "none",
         [(f"max by (status) (notifications_deliveries{{{job}}})", "{{status}}")]),
        ("Oldest due delivery not yet sent (alert over 5 min)", "s",
         [(f"max(notifications_oldest_due_delivery_age_seconds{{{job}}})", "waiting")]),
        ("SMTP attempts per second by outcome", "ops",
         [(f"sum by (outcome) (rate(notifications_email_attempts_total{{{job}}}[5m]))",
           "{{outcome}}")]),
        ("From delivery stored to SMTP acceptance (p50, p99)", "s", [
            (f"histogram_quantile({q}, sum by (le) "
             f"(rate(notifications_email_delivery_seconds_bucket{{{job}}}[15m])))",
             f"p{int(q * 100)}") for q in (0.5, 0.99)
        ]),
        ("Email service level: share late or failed (budget 1 %)", "percentunit",
         [(f"slo:email_error_ratio:rate{w}{{{job}}}", w) for w in ("5m", "1h", "1d")]),
    ]


def overview() -> list[Panel]:
    sel = f"route!~{OPS}"
    return [
        ("Requests per second by service", "reqps",
         [(f"sum by (job) (rate(http_requests_total{{{sel}}}[5m]))", "{{job}}")]),
        ("Share of 5xx by service", "percentunit",
         [(f'sum by (job) (rate(http_requests_total{{{sel}, status=~"5.."}}[5m])) '
           f"/ sum by (job) (rate(http_requests_total{{{sel}}}[5m]))", "{{job}}")]),
        ("Latency p99 by service", "s",
         [(f"histogram_quantile(0.99, sum by (job, le) "
           f"(rate(http_request_duration_seconds_bucket{{{sel}}}[5m])))", "{{job}}")]),
        ("Service levels: error ratio over the last hour", "percentunit",
         [(f"slo:{s}_error_ratio:rate1h", f"{s} {{{{job}}}}") for s in ("api", "email", "outbox")]),
        ("Not ready (pods with a failing check)", "none",
         [("count by (job) (readiness_check == 0)", "{{job}}"),
          ('count by (job) (up{job=~"registry|casework|notifications|web"} == 0)',
           "{{job}} down")]),
        ("Outbox: oldest unpublished event", "s",
         [("max by (job) (outbox_oldest_age_seconds)", "{{job}}")]),
        ("Outbox backlog", "none", [("max by (job) (outbox_backlog)", "{{job}}")]),
        ("Consumer lag: messages waiting", "none",
         [('max by (queue) (broker_queue_messages{kind="main"})', "{{queue}}")]),
        ("Dead-letter queue depth", "none",
         [('max by (queue) (broker_queue_messages{kind="dead_letter"})', "{{queue}}")]),
        ("Deliveries by status", "none",
         [("max by (status) (notifications_deliveries)", "{{status}}")]),
    ]


def dashboard(uid: str, title: str, rows: list[tuple[str, list[Panel]]]) -> dict[str, Any]:
    panels: list[dict[str, Any]] = []
    y = 0
    for row_title, row_panels in rows:
        panels.append({"id": len(panels) + 1, "type": "row", "title": row_title,
                       "collapsed": False, "gridPos": {"h": 1, "w": 24, "x": 0, "y": y},
                       "panels": []})
        y += 1
        for i, (title, unit, queries) in enumerate(row_panels):
            panels.append({
                "id": len(panels) + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": y + 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "options": {"legend": {"displayMode": "list", "placement": "bottom"},
                            "tooltip": {"mode": "multi"}},
                "targets": [{"refId": chr(ord("A") + n), "expr": expr, "legendFormat": legend,
                             "datasource": {"type": "prometheus", "uid": "${datasource}"}}
                            for n, (expr, legend) in enumerate(queries)],
            })
        y += 8 * ((len(row_panels) + 1) // 2)
    return {
        "uid": uid,
        "title": title,
        "tags": ["asf-samverkan"],
        "timezone": "browser",
        "schemaVersion": 39,
        "version": 1,
        "editable": True,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [{"name": "datasource", "label": "Prometheus",
                                 "type": "datasource", "query": "prometheus"}]},
        "annotations": {"list": []},
        "panels": panels,
    }


def dashboards() -> dict[str, dict[str, Any]]:
    out = {"overview": dashboard("asf-overview", "ASF Samverkan — overview",
                                 [("All services", overview())])}
    for job in (*APIS, "web"):
        rows = [("HTTP", traffic(job))]
        if job in PUBLISHERS:
            rows.append(("Outbox", outbox(job)))
        if job in CONSUMERS:
            rows.append(("Consumer", consumer(job)))
        if job == "notifications":
            rows.append(("Deliveries", deliveries()))
        out[job] = dashboard(f"asf-{job}", f"ASF Samverkan — {job}", rows)
    return out


def render() -> dict[str, str]:
    return {f"{name}.json": json.dumps(d, indent=2, ensure_ascii=False) + "\n"
            for name, d in dashboards().items()}


def main() -> int:
    files = render()
    if "--check" in sys.argv:
        drifted = [n for n, text in files.items()
                   if not (TARGET / n).exists() or (TARGET / n).read_text() != text]
        stale = {p.name for p in TARGET.glob("*.json")} - set(files)
        for name in [*drifted, *stale]:
            print(f"{TARGET / name} has drifted; run: uv run python {__file__}", file=sys.stderr)
        return 1 if drifted or stale else 0
    TARGET.mkdir(exist_ok=True)
    for name, text in files.items():
        (TARGET / name).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
