"""The operator's /metrics endpoint: served from the one registry, stacks counted by condition."""

from __future__ import annotations

import socket
import urllib.request

from addonstack.controller import metrics


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def status(*true: str) -> dict[str, object]:
    return {"conditions": [{"type": t, "status": "True" if t in true else "False"} for t in metrics.CONDITIONS]}


def test_metrics_endpoint_counts_stacks_by_condition() -> None:
    # Other tests in this process (in-process operators) may have stacks recorded: count from theirs.
    def gauge(cond: str) -> float:
        return metrics.REGISTRY.get_sample_value("addonstack_stacks", {"condition": cond}) or 0.0

    before = {cond: gauge(cond) for cond in metrics.CONDITIONS}
    port = free_port()
    metrics.serve(f"127.0.0.1:{port}")
    ns = "metrics-test-ns"
    metrics.observe_stack(ns, "a", status("Ready"))
    metrics.observe_stack(ns, "b", status("Stalled"))
    metrics.observe_stack(ns, "c", status("Reconciling"))
    metrics.observe_stack(ns, "c", status("Ready"))  # c became Ready: counted once, under Ready
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert f'addonstack_stacks{{condition="Ready"}} {before["Ready"] + 2}' in text
    assert f'addonstack_stacks{{condition="Stalled"}} {before["Stalled"] + 1}' in text
    assert f'addonstack_stacks{{condition="Reconciling"}} {before["Reconciling"]}' in text
    metrics.observe_stack(ns, "b", None)  # deleted
    assert gauge("Stalled") == before["Stalled"]
    for name in ("a", "c"):
        metrics.observe_stack(ns, name, None)
    assert gauge("Ready") == before["Ready"]


def test_results_and_a_taken_port_is_not_fatal() -> None:
    assert metrics.result_of(status("Ready")) == "ready"
    assert metrics.result_of(status("Stalled")) == "stalled"
    assert metrics.result_of(status("Reconciling")) == "progressing"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        metrics.serve(f"127.0.0.1:{taken.getsockname()[1]}")  # logs an error, does not raise


def test_the_grafana_dashboard_and_the_alerts_only_use_metrics_the_operator_exports() -> None:
    import json
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    exported = {m.name for m in metrics.REGISTRY.collect()}
    suffixes = ("_total", "_bucket", "_count", "_sum", "_created")
    dashboard = json.loads((root / "deploy" / "grafana" / "addonstack-operator.json").read_text())
    rules = (root / "deploy" / "chart" / "addonstack" / "templates" / "metrics.yaml").read_text()
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]] + [rules]
    used = {m for e in exprs for m in re.findall(r"\baddonstack_[a-z_]+", e)}
    assert used, "the scan found no metric names"
    unknown = {m for m in used if m not in exported and not any(m.removesuffix(s) in exported for s in suffixes)}
    assert not unknown, f"not exported by controller/metrics.py: {sorted(unknown)}"
