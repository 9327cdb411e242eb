"""deploy/prometheus/alerts.yml: valid, each rule unit-tested (alerts_test.yml), and reading
only metrics we export; `.ci/run` runs the same two promtool commands."""

from __future__ import annotations

import re

import yaml

from tests.support.prometheus import ROOT, exported_names, needs_promtool, promtool

RULES = ROOT / "deploy" / "prometheus" / "alerts.yml"
RULE_TESTS = ROOT / "deploy" / "prometheus" / "alerts_test.yml"
#: the issue's list: no webhook, held too long, dead letters, auth, readiness, queue wait,
#: SLA breaches, reconcile recovering in webhooks mode
EXPECTED = {
    "LeadrouterNoWebhooks",
    "LeadrouterHeldReplyTooOld",
    "LeadrouterDeadLettersGrowing",
    "LeadrouterLeadterraAuthFailed",
    "LeadrouterNotReady",
    "LeadrouterQueueWaitHigh",
    "LeadrouterSlaBreaches",
    "LeadrouterReconcileRecovering",
}
NOT_OURS = {"up"}  # Prometheus's own


def alerts() -> dict[str, dict]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"]}


def test_every_alert_the_issue_asks_for_is_there_with_a_severity_and_a_summary() -> None:
    rules = alerts()
    assert set(rules) == EXPECTED
    for name, rule in rules.items():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


def test_every_alert_has_a_unit_test_that_sees_it_fire() -> None:
    tests = yaml.safe_load(RULE_TESTS.read_text())
    assert tests["rule_files"] == ["alerts.yml"]
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    silent = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test", [])
        if not case.get("exp_alerts")
    }
    assert fired == set(alerts())
    assert silent == set(alerts())


def test_the_rules_read_only_metrics_we_export() -> None:
    exported = exported_names()
    series = {name.removesuffix("_bucket") for name in exported} | {
        f"{name}_bucket" for name, kind in exported.items() if kind == "histogram"
    }
    for name, rule in alerts().items():
        used = set(re.findall(r"\b(leadrouter_[a-z_]+|up)\b", rule["expr"]))
        assert used, name
        assert used <= series | NOT_OURS, f"{name} reads {sorted(used - series - NOT_OURS)}"


@needs_promtool
def test_promtool_accepts_the_rules_and_their_unit_tests_pass() -> None:
    checked = promtool("check", "rules", str(RULES))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULE_TESTS))
    assert tested.returncode == 0, tested.stdout + tested.stderr
