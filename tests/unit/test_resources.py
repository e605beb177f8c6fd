"""Plans and quotas (issue 16 point 5): size presets, PodDisruptionBudgets, the stack's totals, and the verdict on
the namespace's ResourceQuota and LimitRange before anything is created (pure; the dev-cluster test asks a real
API server)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.controller.decide import Desired, Observed, Outcome, desire
from addonstack.plan.resources import quantity, quota_problems, show, sized, summary, totals
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.reasons import ConditionReason
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack

SCALABLE = "it-tools"


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def objects(cat: Catalog, **spec: Any) -> list[dict[str, Any]]:
    s = AddonStackSpec.model_validate({"services": ["qdrant", "gatus"], **spec})
    planned = plan_stack(cat, s, "s1", "ns", StackDefaults(), make_rng(1))
    plan, ctx = planned.plan, planned.context
    return render_kubernetes(plan, ctx)[0]


def quota(hard: dict[str, str], used: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "tenant"}, "spec": {"hard": hard, **spec}, "status": {"used": used or {}}}


def limit_range(*items: dict[str, Any]) -> dict[str, Any]:
    return {"metadata": {"name": "limits"}, "spec": {"limits": list(items)}}


def test_quantities_parse_and_print_as_kubectl_does() -> None:
    assert quantity("250m") == Decimal("0.25") and quantity("1.5Gi") == 1536 * 2**20 and quantity("1e3") == 1000
    assert quantity("garbage") == 0
    assert show("requests.cpu", Decimal("1.25")) == "1250m" and show("limits.cpu", Decimal(2)) == "2"
    assert show("requests.memory", quantity("2Gi")) == "2Gi" and show("limits.memory", quantity("1536Mi")) == "1536Mi"


def test_size_presets_scale_requests_and_limits(cat: Catalog) -> None:
    assert sized(512, "medium") == ({"cpu": "50m", "memory": "512Mi"}, {"memory": "1024Mi"})
    assert sized(512, None) == sized(512, "medium")
    assert sized(512, "small") == ({"cpu": "25m", "memory": "256Mi"}, {"memory": "1024Mi"})
    assert sized(512, "large") == ({"cpu": "100m", "memory": "1024Mi"}, {"memory": "2048Mi"})
    medium, large = totals(objects(cat)), totals(objects(cat, size="large"))
    assert large.get("requests.memory") == 2 * medium.get("requests.memory") > 0
    assert large.get("limits.memory") == 2 * medium.get("limits.memory")
    small = totals(objects(cat, size="small"))
    assert small.get("requests.memory") * 2 == medium.get("requests.memory")
    # An explicit override wins over the preset.
    ov = {"gatus": {"resources": {"requests": {"memory": "300Mi"}}}}
    gatus = next(o for o in objects(cat, size="large", overrides=ov) if o["kind"] == "Deployment")
    assert gatus["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] == "300Mi"


def test_a_budget_only_for_services_with_more_than_one_replica(cat: Catalog) -> None:
    def budgets(replicas: int) -> list[dict[str, Any]]:
        s = AddonStackSpec.model_validate({"services": [SCALABLE], "overrides": {SCALABLE: {"replicas": replicas}}})
        planned = plan_stack(cat, s, "s1", "ns", StackDefaults(), make_rng(1))
        plan, ctx = planned.plan, planned.context
        return [o for o in render_kubernetes(plan, ctx)[0] if o["kind"] == "PodDisruptionBudget"]

    assert budgets(1) == []
    (pdb,) = budgets(3)
    assert pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == {
        "app.kubernetes.io/name": SCALABLE,
        "app.kubernetes.io/instance": "s1",
    }


def test_totals_count_pods_replicas_claims_and_objects(cat: Catalog) -> None:
    s = AddonStackSpec.model_validate({"services": ["qdrant", SCALABLE], "overrides": {SCALABLE: {"replicas": 2}}})
    planned = plan_stack(cat, s, "s1", "ns", StackDefaults(), make_rng(1))
    plan, ctx = planned.plan, planned.context
    t = totals(render_kubernetes(plan, ctx)[0])
    assert t.get("pods") == 3  # qdrant 1 + it-tools 2
    assert t.get("persistentvolumeclaims") >= 1 and t.get("requests.storage") > 0
    assert t.get("count/deployments.apps") == 1 and t.get("count/statefulsets.apps") == 1
    out = summary(t)
    assert out.pods == 3 and out.requests["memory"].endswith("Mi") and "cpu" not in out.limits


def test_a_quota_too_small_stalls_naming_quota_resource_and_fix(cat: Catalog) -> None:
    objs = objects(cat)
    need = totals(objs).get("requests.memory")
    assert quota_problems(objs, [], [quota({"requests.memory": show("m", need)})], []) == []
    (p,) = quota_problems(objs, [], [quota({"requests.memory": "64Mi"})], [])
    assert p.reason == ConditionReason.QUOTA_EXCEEDED
    assert p.message.startswith("ResourceQuota tenant: requests.memory would reach")
    assert "the quota allows 64Mi" in p.message and "spec.size" in p.message
    # What others use counts; what this stack already runs is in `used` once, not twice.
    used = {"requests.memory": show("m", need)}
    assert quota_problems(objs, objs, [quota({"requests.memory": show("m", need)}, used)], []) == []
    assert quota_problems(objs, [], [quota({"requests.memory": show("m", need)}, used)], [])
    # Short names and object counts.
    assert quota_problems(objs, [], [quota({"memory": "64Mi"})], [])
    assert quota_problems(objs, [], [quota({"count/deployments.apps": "0"})], [])
    # A quota scoped to other pods does not count ours.
    assert quota_problems(objs, [], [quota({"requests.memory": "64Mi"}, scopes=["BestEffort"])], []) == []


def test_a_quota_on_cpu_limits_needs_a_limit_range_default(cat: Catalog) -> None:
    objs = objects(cat)
    (p,) = quota_problems(objs, [], [quota({"limits.cpu": "100"})], [])
    assert p.reason == ConditionReason.QUOTA_EXCEEDED and "LimitRange with default.cpu" in p.message
    lr = limit_range({"type": "Container", "default": {"cpu": "500m"}})
    assert quota_problems(objs, [], [quota({"limits.cpu": "100"})], [lr]) == []
    assert totals(objs, [lr]).get("limits.cpu") == Decimal("0.5") * 2  # two containers get the default


def test_limit_range_bounds_are_checked_before_creating(cat: Catalog) -> None:
    objs = objects(cat)
    (p, *_) = quota_problems(objs, [], [], [limit_range({"type": "Container", "max": {"memory": "64Mi"}})])
    assert p.reason == ConditionReason.LIMIT_RANGE_VIOLATED
    assert p.message.startswith("LimitRange limits: container ") and "at most 64Mi" in p.message
    assert quota_problems(objs, [], [], [limit_range({"type": "PersistentVolumeClaim", "max": {"storage": "1Mi"}})])
    assert quota_problems(objs, [], [], [limit_range({"type": "Container", "maxLimitRequestRatio": {"memory": "1"}})])
    assert quota_problems(objs, [], [], [limit_range({"type": "Container", "max": {"memory": "64Gi"}})]) == []


def test_the_operator_stalls_before_writing_and_reports_the_totals(cat: Catalog) -> None:
    body = {
        "metadata": {"name": "s1", "namespace": "ns", "uid": "u", "generation": 1},
        "spec": {"services": ["qdrant", "gatus"]},
    }
    stalled = desire(Observed(body, [], quotas=[quota({"requests.memory": "64Mi"})]), StackDefaults(), cat)
    assert isinstance(stalled, Outcome)
    cond = next(c for c in stalled.status["conditions"] if c["type"] == "Stalled")
    assert cond["status"] == "True" and cond["reason"] == "QuotaExceeded" and "ResourceQuota tenant" in cond["message"]
    assert stalled.status["resources"]["pods"] == 2
    ok = desire(Observed(body, [], quotas=[quota({"requests.memory": "64Gi"})]), StackDefaults(), cat)
    assert isinstance(ok, Desired) and ok.resources is not None and ok.resources.pods == 2
