"""deploy/grafana/leadrouter.json, checked without Grafana: a panel for every metric we export,
every panel expression valid PromQL (promtool, through a generated rules file), and the
provisioning files pointing where docker-compose.yml mounts them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.support.prometheus import (
    GRAFANA_VARIABLES,
    ROOT,
    exported_names,
    mentions,
    needs_promtool,
    promtool,
)

GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARD = json.loads((GRAFANA / "leadrouter.json").read_text())
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
PANELS = [p for p in DASHBOARD["panels"] if p["type"] != "row"]


def expressions() -> list[str]:
    return [target["expr"] for panel in PANELS for target in panel["targets"]]


def for_prometheus(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    return expr


def test_every_exported_metric_has_a_panel() -> None:
    exprs = expressions()
    missing = [
        name
        for name, kind in exported_names().items()
        if not any(mentions(expr, name, kind) for expr in exprs)
    ]
    assert not missing, f"no panel reads {missing}"


@needs_promtool
def test_every_panel_expression_is_valid_promql(tmp_path: Path) -> None:
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"dashboard:panel_{n}", "expr": for_prometheus(expr)}
                    for n, expr in enumerate(expressions())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    checked = promtool("check", "rules", str(path))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(expressions())} rules found" in checked.stdout


def test_the_only_grafana_variables_are_the_ones_substituted_above() -> None:
    for expr in expressions():
        assert "$" not in for_prometheus(expr), expr


def test_panels_have_unique_ids_titles_and_the_provisioned_data_source() -> None:
    [source] = yaml.safe_load(
        (GRAFANA / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )["datasources"]
    ids = [panel["id"] for panel in DASHBOARD["panels"]]
    assert len(ids) == len(set(ids))
    for panel in PANELS:
        assert panel["title"] and panel["description"], panel["id"]
        assert panel["datasource"]["uid"] == source["uid"], panel["title"]
        assert all(t["datasource"]["uid"] == source["uid"] for t in panel["targets"])
    assert source["url"] == "http://prometheus:9090"


def test_panels_do_not_overlap_on_the_grid() -> None:
    taken: dict[tuple[int, int], str] = {}
    for panel in DASHBOARD["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in taken, f"{panel['title']} overlaps {taken[(x, y)]}"
                taken[(x, y)] = panel["title"]


def test_compose_provisions_the_dashboard_where_the_provider_reads() -> None:
    grafana = COMPOSE["services"]["grafana"]
    [provider] = yaml.safe_load(
        (GRAFANA / "provisioning" / "dashboards" / "leadrouter.yml").read_text()
    )["providers"]
    mounts = {volume.split(":")[0]: volume.split(":")[1] for volume in grafana["volumes"]}
    assert mounts["./deploy/grafana/provisioning"] == "/etc/grafana/provisioning"
    target = mounts["./deploy/grafana/leadrouter.json"]
    assert str(Path(target).parent) == provider["options"]["path"]
    assert grafana["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"] == target


@pytest.mark.parametrize("path", sorted(GRAFANA.rglob("*.yml")))
def test_every_provisioning_file_is_version_1(path: Path) -> None:
    assert yaml.safe_load(path.read_text())["apiVersion"] == 1
