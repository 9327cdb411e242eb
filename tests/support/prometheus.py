"""What the Prometheus tests share: the metric names /metrics exports and a promtool runner."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from worker.gauges import GAUGE_DOCS
from worker.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
#: what Grafana substitutes before Prometheus sees an expression
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h"}
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None,
    reason="promtool is not installed (Debian's `prometheus` package; .ci/run installs it)",
)


def exported_names() -> dict[str, str]:
    """Every metric family /metrics exports, as Prometheus names it, with its type: each
    process's registry (counters get `_total`) and the gauges computed at scrape time."""
    names = {
        family.name + ("_total" if family.type == "counter" else ""): family.type
        for family in Metrics("names:1").registry.collect()
    }
    return names | dict.fromkeys(GAUGE_DOCS, "gauge")


def mentions(expr: str, name: str, kind: str) -> bool:
    """Whether the PromQL `expr` reads metric `name` (a histogram through its series)."""
    suffix = r"(_bucket|_count|_sum)?" if kind == "histogram" else ""
    return re.search(rf"\b{re.escape(name)}{suffix}\b", expr) is not None


def promtool(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["promtool", *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
