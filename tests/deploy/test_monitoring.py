"""Service levels and alerts, checked offline: the rules are valid (`promtool check rules`),
every alert is unit-tested firing and not firing (`promtool test rules`), the SLO rules are
generated from slos.yaml, and every alert links a runbook that exists."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
MONITORING = ROOT / "deploy" / "monitoring"
RULES = sorted((MONITORING / "rules").glob("*.yaml"))
UNIT_TESTS = sorted((MONITORING / "tests").glob("*.test.yaml"))
RUNBOOKS = ROOT / "docs" / "runbooks"
PROMTOOL = shutil.which("promtool")

needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool is not installed (Debian's `prometheus` package; "
    ".ci/run installs it): the rules are not checked or unit-tested here")


def alerts() -> dict[str, dict[str, Any]]:
    found = {}
    for path in RULES:
        for group in yaml.safe_load(path.read_text())["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    assert rule["alert"] not in found, f"two alerts named {rule['alert']}"
                    found[rule["alert"]] = rule
    return found


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, check=False,
                          timeout=300, cwd=MONITORING)


@needs_promtool
def test_rules_are_valid() -> None:
    result = promtool("check", "rules", *[str(p) for p in RULES])
    assert result.returncode == 0, result.stdout + result.stderr


@needs_promtool
def test_promtool_unit_tests_pass() -> None:
    result = promtool("test", "rules", *[str(p) for p in UNIT_TESTS])
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("SUCCESS") == len(UNIT_TESTS)


def test_every_alert_is_unit_tested_firing_and_not_firing() -> None:
    firing: set[str] = set()
    quiet: set[str] = set()
    for path in UNIT_TESTS:
        doc = yaml.safe_load(path.read_text())
        rule_files = {(path.parent / f).resolve() for f in doc["rule_files"]}
        assert rule_files <= {p.resolve() for p in RULES}
        for case in doc["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert set(alerts()) <= firing, f"never seen firing: {set(alerts()) - firing}"
    assert set(alerts()) <= quiet, f"never seen quiet: {set(alerts()) - quiet}"


def test_slo_rules_are_generated_from_the_slos() -> None:
    result = subprocess.run([sys.executable, str(MONITORING / "generate.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    slos = yaml.safe_load((MONITORING / "slos.yaml").read_text())["slos"]
    assert {s["name"] for s in slos} == {"api", "email", "outbox"}
    for slo in slos:
        assert {f"{slo['alert']}Fast", f"{slo['alert']}Slow"} <= set(alerts())
        assert 0.9 < slo["objective"] < 1


SECTIONS = ("## What it means", "## Confirm", "## Fix", "## Escalate")


@pytest.mark.parametrize("alert", sorted(alerts()))
def test_every_alert_links_its_runbook(alert: str) -> None:
    rule = alerts()[alert]
    assert rule["labels"]["severity"] in ("page", "ticket")
    assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    url = rule["annotations"]["runbook_url"]
    assert url.endswith(f"/docs/runbooks/{alert}.md"), url
    runbook = RUNBOOKS / f"{alert}.md"
    assert runbook.exists(), f"{alert} has no runbook at {runbook.relative_to(ROOT)}"
    text = runbook.read_text()
    assert text.startswith(f"# {alert}\n")
    for section in SECTIONS:
        assert section in text, f"{runbook.name} has no '{section}'"
    commands = re.findall(r"```(?:bash|sh|sql)\n(.+?)```", text, re.S)
    assert commands, f"{runbook.name} gives no exact command to confirm or fix"


def test_no_runbook_without_its_alert() -> None:
    written = {p.stem for p in RUNBOOKS.glob("*.md") if p.name != "README.md"}
    assert written == set(alerts())


def test_prometheus_loads_these_rules_and_names_jobs_after_services() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yaml").read_text())
    assert {str(MONITORING / f) for f in config["rule_files"]} == {str(p) for p in RULES}
    [job] = config["scrape_configs"]
    relabels = {r.get("target_label"): r for r in job["relabel_configs"]}
    assert relabels["job"]["source_labels"] == [
        "__meta_kubernetes_pod_label_app_kubernetes_io_name"]


# --- dashboards ------------------------------------------------------------------------------

DASHBOARDS = MONITORING / "dashboards"


def test_dashboards_are_generated_one_per_service_and_an_overview() -> None:
    result = subprocess.run([sys.executable, str(MONITORING / "dashboards.py"), "--check"],
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert {p.stem for p in DASHBOARDS.glob("*.json")} == {
        "overview", "registry", "casework", "notifications", "web"}
    uids = set()
    for path in DASHBOARDS.glob("*.json"):
        doc = json.loads(path.read_text())
        uids.add(doc["uid"])
        titles = " ".join(p["title"] for p in doc["panels"]).lower()
        for topic in ("request", "latency", "ready"):
            assert topic in titles, f"{path.name} has no {topic} panel"
        if path.stem in ("casework", "notifications", "overview"):
            for topic in ("lag", "dead-letter"):
                assert topic in titles, f"{path.name} has no {topic} panel"
        if path.stem in ("registry", "casework", "overview"):
            assert "outbox" in titles
        if path.stem in ("notifications", "overview"):
            assert "deliveries by status" in titles
    assert len(uids) == 5


@needs_promtool
def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query, written out as a recording rule."""
    rules = []
    for path in sorted(DASHBOARDS.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel.get("targets", []):
                rules.append({"record": f"dashboard:{path.stem}:{len(rules)}",
                              "expr": target["expr"]})
    assert len(rules) > 30
    check = tmp_path / "dashboards.rules.yaml"
    check.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    result = promtool("check", "rules", str(check))
    assert result.returncode == 0, result.stdout + result.stderr
