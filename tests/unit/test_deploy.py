"""Install paths: charts lint and render valid objects with Helm 3 and 4, and the plain manifests are
exactly what the charts render (the CRD being current is tests/unit/test_generated.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_validate import validate

ROOT = Path(__file__).resolve().parents[2]
CHARTS = ROOT / "deploy" / "chart"
TOOLS = Path.home() / ".cache" / "addonstack" / "tools"


def _helm(major: int) -> Path:
    name = "helm3" if major == 3 else "helm"
    found = sorted(p for p in TOOLS.glob(f"*/{name}") if p.is_file())
    if not found:
        pytest.fail(f"{name} not found under {TOOLS}: run `make tools` (tools/k8s/tools.sh)")
    return found[-1]


@pytest.mark.parametrize("major", [3, 4])
def test_charts_lint_and_render_valid_objects(major: int) -> None:
    helm = _helm(major)
    for chart in ("addonstack", "addonstack-crds"):
        res = subprocess.run([str(helm), "lint", str(CHARTS / chart)], capture_output=True, text=True)
        assert res.returncode == 0, res.stdout + res.stderr
    for values in ([], ["--set", "replicas=2"], ["--set", "clusterWide=true"]):
        rendered = subprocess.run(
            [str(helm), "template", "t", str(CHARTS / "addonstack"), "-n", "ops", *values],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        for doc in yaml.safe_load_all(rendered):
            if doc and doc["apiVersion"] != "kopf.dev/v1":
                validate(doc, "1.35.0", strict=True)


def test_values_schema_rejects_bad_values() -> None:
    helm = _helm(4)
    res = subprocess.run(
        [str(helm), "template", "t", str(CHARTS / "addonstack"), "--set", "replicas=0"],
        capture_output=True,
        text=True,
    )
    assert res.returncode != 0 and "replicas" in res.stderr


def test_no_cluster_wide_secret_read_by_default() -> None:
    rendered = subprocess.run(
        [str(_helm(4)), "template", "t", str(CHARTS / "addonstack")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    kinds = [d["kind"] for d in yaml.safe_load_all(rendered) if d]
    assert "ClusterRole" not in kinds and "ClusterRoleBinding" not in kinds


def test_manifests_match_the_charts() -> None:
    helm = _helm(4)
    crds = subprocess.run(
        [str(helm), "template", "addonstack", str(CHARTS / "addonstack-crds")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    op = subprocess.run(
        [str(helm), "template", "addonstack", str(CHARTS / "addonstack"), "--namespace", "addonstack-system"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    manifests = ROOT / "deploy" / "manifests"
    assert (manifests / "crds.yaml").read_text() == crds, "stale: run `make generate`"
    assert (manifests / "operator.yaml").read_text() == op, "stale: run `make generate`"


def _render(*values: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [str(_helm(4)), "template", "t", str(CHARTS / "addonstack"), "-n", "ops", *values],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(out) if d]


def test_peering_lives_where_kopf_looks_for_it() -> None:
    # A namespaced operator's kopf uses a KopfPeering in each namespace it serves, not in its own.
    docs = _render("--set", "replicas=2", "--set", "watchNamespaces={a,b}")
    peerings = sorted(d["metadata"]["namespace"] for d in docs if d["kind"] == "KopfPeering")
    assert peerings == ["a", "b"]
    for role in (d for d in docs if d["kind"] == "Role"):
        assert any("kopfpeerings" in r["resources"] for r in role["rules"]), role
    args = next(d for d in docs if d["kind"] == "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--peering=addonstack" in args
    # One replica: no peering at all. Cluster-wide: the cluster-scoped peering and its ClusterRole rule.
    assert not [d for d in _render() if d["kind"] == "KopfPeering"]
    wide = _render("--set", "replicas=2", "--set", "clusterWide=true")
    assert [d["kind"] for d in wide if "Peering" in str(d["kind"])] == ["ClusterKopfPeering"]
    cluster_role = next(d for d in wide if d["kind"] == "ClusterRole")
    assert any("clusterkopfpeerings" in r["resources"] for r in cluster_role["rules"])


def test_shards_run_one_deployment_each_with_their_own_peering_and_lease_rights() -> None:
    docs = _render("--set", "shards.count=3", "--set", "replicas=2")
    deps = [d for d in docs if d["kind"] == "Deployment"]
    assert [d["metadata"]["name"] for d in deps] == [f"addonstack-operator-shard-{i}" for i in range(3)]
    for i, dep in enumerate(deps):
        args = dep["spec"]["template"]["spec"]["containers"][0]["args"]
        assert {f"--shard-index={i}", "--shard-count=3", "--peering=addonstack"} <= set(args)
        assert dep["spec"]["selector"]["matchLabels"]["addonstack.dev/shard-index"] == str(i)
    selectors = {json.dumps(d["spec"]["selector"], sort_keys=True) for d in deps}
    assert len(selectors) == 3, "no Deployment adopts another shard's pods"
    assert sorted(d["metadata"]["name"] for d in docs if d["kind"] == "KopfPeering") == [
        "addonstack-0", "addonstack-1", "addonstack-2"
    ]  # fmt: skip
    lease_role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-shards"))
    assert lease_role["metadata"]["namespace"] == "ops" and lease_role["rules"][0]["resources"] == ["leases"]
    assert not [d for d in _render() if d["kind"] == "Role" and d["metadata"]["name"].endswith("-shards")]


def test_catalog_configmap_is_mounted_when_named() -> None:
    pod = next(d for d in _render("--set", "catalog.configMap=acme-catalog") if d["kind"] == "Deployment")
    spec = pod["spec"]["template"]["spec"]
    env = {e["name"]: e.get("value") for e in spec["containers"][0]["env"]}
    mount = next(m for m in spec["containers"][0]["volumeMounts"] if m["name"] == "catalog")
    assert env["ADDONSTACK_CATALOG_DIR"] == mount["mountPath"]
    assert next(v for v in spec["volumes"] if v["name"] == "catalog")["configMap"] == {"name": "acme-catalog"}
    plain = next(d for d in _render() if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    assert not [v for v in plain["volumes"] if v["name"] == "catalog"]


@pytest.mark.parametrize(("values", "expected"), [((), 250), (("--set", "api.listChunkSize=0"), 0)])
def test_chart_env_reaches_the_operator_settings(
    values: tuple[str, ...], expected: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the chart sets is what the operator reads: its env parsed by OperatorSettings.from_env."""
    from addonstack.controller.settings import OperatorSettings

    pod = next(d for d in _render(*values) if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    for e in pod["containers"][0]["env"]:
        if "value" in e:
            monkeypatch.setenv(e["name"], e["value"])
    settings = OperatorSettings.from_env()
    assert (settings.list_chunk_size, settings.qps, settings.burst) == (expected, 200.0, 400)


def test_a_bad_list_chunk_size_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    from addonstack.controller.settings import OperatorSettings

    monkeypatch.setenv("ADDONSTACK_LIST_CHUNK_SIZE", "lots")
    with pytest.raises(ValueError, match="ADDONSTACK_LIST_CHUNK_SIZE='lots' is not an integer"):
        OperatorSettings.from_env()
