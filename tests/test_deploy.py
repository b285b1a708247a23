"""deploy/: the alert rules and the dashboard use only metrics the service exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from checker.metrics import Metrics

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"\bmailpreflight_[a-z_]+")


def _exported() -> set[str]:
    names: set[str] = set()
    for family in Metrics().registry.collect():
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


def _expressions(document: str) -> list[str]:
    text = (ROOT / document).read_text()
    if document.endswith(".yml"):
        rules = yaml.safe_load(text)["groups"][0]["rules"]
        return [str(rule["expr"]) for rule in rules]
    panels = json.loads(text)["panels"]
    return [target["expr"] for panel in panels for target in panel["targets"]]


class TestDeployFiles:
    """Every metric named in an alert or a panel exists, with the labels it is used with."""

    @pytest.mark.parametrize("document", ["deploy/alerts.yml", "deploy/grafana-dashboard.json"])
    def test_metric_names_exist(self, document: str) -> None:
        """No alert or panel refers to a metric the service does not export."""
        exported = _exported()
        used = {m for expr in _expressions(document) for m in NAME.findall(expr)}
        assert used, document
        assert used <= exported, used - exported
