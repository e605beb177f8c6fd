"""``addonstack validate --namespace`` against the real control plane: it reads the namespace's ResourceQuotas
and LimitRanges and refuses (exit 1, as for other stacks the platform cannot run) a stack the namespace would
refuse, in the words the operator's Stalled condition uses for the same objects; a namespace without quota, or
with room, passes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from lightkube import Client, codecs
from lightkube.resources.core_v1 import LimitRange, ResourceQuota

from addonstack.catalog.loader import load_catalog
from addonstack.cli.main import cli
from addonstack.cli.output import FAILURE
from addonstack.controller.decide import Observed, Outcome, desire
from addonstack.plan.resources import quantity, totals
from addonstack.render.stack import StackDefaults
from tests.cluster.operator_harness import stack, wait_for

pytestmark = pytest.mark.cluster

SPEC = {"services": ["qdrant", "gatus"], "size": "large"}


def _validate(kubeconfig: Path, tmp_path: Path, namespace: str, *extra: str, command: str = "validate") -> Result:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(stack("big", "elsewhere", SPEC)))
    args = [command, "-f", str(path), "--namespace", namespace, *extra]
    return CliRunner().invoke(cli, args, env={"KUBECONFIG": str(kubeconfig)}, catch_exceptions=False)


def _create(client: Client, kind: str, name: str, namespace: str, spec: dict[str, Any]) -> None:
    obj = {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": namespace}, "spec": spec}
    client.create(codecs.from_dict(obj))


def _operator_says(client: Client, namespace: str) -> tuple[str, str]:
    """(reason, message) of the Stalled condition the operator's decision gives the same stack in ``namespace``,
    with the quotas and LimitRanges as the cluster returns them."""
    body = stack("big", namespace, SPEC)
    body["metadata"].update(uid="uid-1", generation=1)
    quotas = [{**q.to_dict(), "kind": "ResourceQuota"} for q in client.list(ResourceQuota, namespace=namespace)]
    lrs = [{**x.to_dict(), "kind": "LimitRange"} for x in client.list(LimitRange, namespace=namespace)]
    outcome = desire(Observed(body, [], quotas=quotas, limit_ranges=lrs), StackDefaults(), load_catalog())
    assert isinstance(outcome, Outcome), "the operator's decision does not stall either"
    stalled = next(c for c in outcome.status["conditions"] if c["type"] == "Stalled")
    return stalled["reason"], stalled["message"]


def test_a_stack_over_the_quota_is_refused_in_the_operators_words(
    client: Client, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    _create(client, "ResourceQuota", "tenant-plan", namespace, {"hard": {"requests.memory": "100Mi", "pods": "10"}})
    result = _validate(kubeconfig, tmp_path, namespace)
    assert result.exit_code == FAILURE, result.output
    text = " ".join(result.stderr.split())
    assert "(QuotaExceeded)" in text
    assert "ResourceQuota tenant-plan: requests.memory would reach" in text and "the quota allows 100Mi" in text
    reason, message = _operator_says(client, namespace)
    assert reason == "QuotaExceeded" and message in text, f"operator: {message}\nvalidate: {text}"


def test_a_container_over_the_limit_range_is_refused_with_json(
    client: Client, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    limits = {"limits": [{"type": "Container", "max": {"memory": "64Mi"}}]}
    _create(client, "LimitRange", "tenant-limits", namespace, limits)
    result = _validate(kubeconfig, tmp_path, namespace, "--json")
    assert result.exit_code == FAILURE, result.output
    data = json.loads(result.stdout)
    assert data["valid"] is False and data["reason"] == "LimitRangeViolated", data
    assert any(p.startswith("LimitRange tenant-limits: container qdrant of ") for p in data["problems"]), data
    assert all("at most 64Mi is allowed" in p for p in data["problems"]), data
    reason, message = _operator_says(client, namespace)
    assert (reason, message) == ("LimitRangeViolated", "; ".join(data["problems"])[:2000])


def test_a_namespace_without_quota_or_with_room_passes(
    client: Client, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    result = _validate(kubeconfig, tmp_path, namespace, "--json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["valid"] is True
    assert "not read" not in result.stderr, result.stderr  # the cluster was asked, and answered
    _create(client, "ResourceQuota", "roomy", namespace, {"hard": {"requests.memory": "64Gi", "pods": "10"}})
    _create(client, "LimitRange", "wide", namespace, {"limits": [{"type": "Container", "max": {"memory": "64Gi"}}]})
    result = _validate(kubeconfig, tmp_path, namespace)
    assert result.exit_code == 0, result.output
    assert "valid" in result.stdout


def test_what_the_stack_already_runs_is_not_counted_twice(
    client: Client, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    """The quota's ``used`` holds the running stack: re-validating it takes that part out, as the operator does."""
    rendered = _validate(kubeconfig, tmp_path, namespace, "--json", "--seed", "1", command="render")
    objs = json.loads(rendered.stdout)["objects"]
    for obj in objs:
        client.apply(codecs.from_dict(obj), field_manager="addonstack-tests")
    need = totals(objs).get("requests.memory")
    hard = need + quantity("50Mi")  # room for the stack once, not twice
    _create(client, "ResourceQuota", "tenant-plan", namespace, {"hard": {"requests.memory": f"{int(hard)}"}})

    def used() -> Any:
        q = client.get(ResourceQuota, "tenant-plan", namespace=namespace)
        value = quantity(((q.status and q.status.used) or {}).get("requests.memory", 0))
        return value if value >= need else f"used {value}, the stack's pods ask {need}"

    counted = wait_for("the quota to count the stack's pods", used, timeout=60)
    assert counted + need > hard  # counted twice, the stack would not fit
    result = _validate(kubeconfig, tmp_path, namespace)
    assert result.exit_code == 0, result.output
