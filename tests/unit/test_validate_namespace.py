"""``addonstack validate --namespace`` without a cluster stays an offline command (the quota check is skipped
with a warning that says why), and what it reads of a running stack keeps only what a quota counts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from addonstack.cli.main import cli
from addonstack.cli.namespace_facts import counted_part
from addonstack.plan.resources import totals

ROOT = Path(__file__).resolve().parents[2]


def test_the_counted_part_keeps_what_the_quota_counts_and_no_secret_data() -> None:
    secret = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s", "labels": {"a": "b"}},
              "data": {"password": "c2VjcmV0"}, "stringData": {"token": "t"}}  # fmt: skip
    kept = counted_part(secret)
    assert "c2VjcmV0" not in json.dumps(kept) and "data" not in kept and "stringData" not in kept
    claim_template = {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "2Gi"}}}}
    container = {"name": "c", "resources": {"requests": {"memory": "64Mi", "cpu": "50m"}}}
    sts = {"kind": "StatefulSet", "metadata": {"name": "db", "uid": "u"}, "status": {"replicas": 2},
           "spec": {"replicas": 2, "template": {"spec": {"containers": [container]}},
                    "volumeClaimTemplates": [claim_template]}}  # fmt: skip
    assert totals([counted_part(sts), kept]).amounts == totals([sts, secret]).amounts


def test_without_a_cluster_validate_namespace_warns_and_still_decides(tmp_path: Path) -> None:
    env = {"KUBECONFIG": str(tmp_path / "missing-kubeconfig")}
    args = ["validate", "-f", str(ROOT / "examples" / "rag.yaml"), "--namespace", "tenant-a", "--json"]
    res = CliRunner().invoke(cli, args, env=env)
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["valid"] is True
    warning = " ".join(res.stderr.split())
    assert "--namespace tenant-a: Pod Security label, ResourceQuotas and LimitRanges not read (no usable" in warning
    res = CliRunner().invoke(cli, [*args, "--pod-security", "baseline"], env=env)
    assert res.exit_code == 0, res.output
    warning = " ".join(res.stderr.split())
    assert "ResourceQuotas and LimitRanges not read" in warning and "Pod Security label" not in warning
