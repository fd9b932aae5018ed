"""contrib/grafana/ike-offline.json queries only metrics (and label values) we write.

A real ``collect --prometheus FILE`` against the demo mock fleet (over SSH, into a fresh
history) writes the textfile; ``prometheus_client``'s parser reads it; every PromQL
expression of the dashboard is parsed with a real PromQL parser (``promql-parser``) and
each vector selector's metric name, label names and matched values must be in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import promql_parser
from helpers import ROOT, collect
from prometheus_client.parser import text_string_to_metric_families

from collector.core.records import ErrorKind

DASHBOARD = ROOT / "contrib" / "grafana" / "ike-offline.json"
PASSWORD = "grafana-dash-pw"
SCRAPE_LABELS = {"instance", "job"}
"""Added by Prometheus when it scrapes node_exporter, not in the textfile."""
_LABEL_VALUES = re.compile(r"^label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)\s*,\s*(\w+)\s*\)$")


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """Every PromQL expression of the panels (rows' nested panels included)."""
    exprs: list[str] = []

    def panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        for item in items:
            yield item
            yield from panels(item.get("panels", []))

    for panel in panels(dashboard["panels"]):
        for target in panel.get("targets", []):
            if target.get("expr"):
                exprs.append(str(target["expr"]))
    return exprs


def grafana_to_promql(expr: str) -> str:
    """Grafana's interval variables become durations; ``$var`` only appears in strings."""
    return re.sub(r"\$\{?__(?:rate_)?interval\}?|\$\{?__range\}?", "5m", expr)


def selectors(node: Any) -> Iterator[Any]:
    """The vector selectors of a parsed expression, however deeply nested."""
    if isinstance(node, promql_parser.VectorSelector):
        yield node
        return
    for attribute in ("lhs", "rhs", "expr", "param", "vector_selector", "args"):
        child = getattr(node, attribute, None)
        if child is None:
            continue
        for item in child if isinstance(child, list) else [child]:
            yield from selectors(item)


def matches(op: Any, wanted: str, values: set[str]) -> bool:
    """Whether a matcher selects at least one of the label values written."""
    if op == promql_parser.MatchOp.Equal:
        return wanted in values
    if op == promql_parser.MatchOp.NotEqual:
        return bool(values - {wanted})
    pattern = re.compile(wanted)
    hits = {value for value in values if pattern.fullmatch(value)}
    return bool(hits) if op == promql_parser.MatchOp.Re else bool(values - hits)


def test_every_dashboard_query_selects_metrics_we_write(mock_fleet: Any, tmp_path: Path) -> None:
    fleet = mock_fleet("demo", password=PASSWORD)
    textfile = tmp_path / "ike_offline.prom"
    result = collect(
        fleet.inventory_path,
        tmp_path,
        *("--quiet", "--prometheus", str(textfile)),
        password=PASSWORD,
        timeout=15,
    )
    assert result.code == 1, result.stderr  # the demo's faulty devices
    written: dict[str, dict[str, set[str]]] = {}
    errors: dict[str, float] = {}
    for family in text_string_to_metric_families(textfile.read_text(encoding="utf-8")):
        for sample in family.samples:
            if sample.name == "ike_offline_device_errors":
                errors[sample.labels["kind"]] = sample.value
            labels = written.setdefault(sample.name, {})
            for name, value in sample.labels.items():
                labels.setdefault(name, set()).add(value)

    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = dashboard_exprs(dashboard)
    assert len(exprs) >= 15
    used: set[str] = set()
    for expr in exprs:
        parsed = promql_parser.parse(grafana_to_promql(expr))
        found = list(selectors(parsed))
        assert found, f"no metric in {expr!r}"
        for selector in found:
            name = selector.name
            assert name in written, f"{expr!r}: {name} is not written"
            used.add(name)
            for matcher in selector.matchers.matchers:
                if matcher.name in SCRAPE_LABELS:
                    continue
                values = written[name].get(matcher.name)
                assert values is not None, f"{expr!r}: {name} has no label {matcher.name}"
                assert matches(matcher.op, matcher.value, values), (expr, matcher.value, values)

    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = _LABEL_VALUES.match(variable["definition"])
            assert match is not None and match.group(1) in written, variable["definition"]

    # The panels the dashboard exists for.
    assert {
        "ike_offline_deletions",
        "ike_offline_deletions_by_category",
        "ike_offline_new_deletions",
        "ike_offline_device_errors",
        "ike_offline_devices",
        "ike_offline_gaps",
        "ike_offline_last_success_timestamp_seconds",
    } <= used
    # And the run the textfile came from really had failures of several kinds to show.
    # (demo.yaml: ar-gz-02 wrong_credentials, ar-sh-03 port_closed, fw-sh-02 truncated_table).
    failed = {kind: count for kind, count in errors.items() if count}
    assert failed == {
        ErrorKind.AUTH.value: 1,
        ErrorKind.UNREACHABLE.value: 1,
        ErrorKind.INCOMPLETE_OUTPUT.value: 1,
    }, errors


def test_dashboard_is_importable_json() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    assert dashboard["uid"] == "ike-offline"
    for panel in dashboard["panels"]:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        position = panel["gridPos"]
        assert position["x"] + position["w"] <= 24
