"""The reconcile decision without a cluster: observed children + spec -> applies, prunes, status, Events."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.cli.main import cli
from addonstack.constants import LABEL_SERVICE
from addonstack.controller.applycache import ApplyCache
from addonstack.controller.decide import (
    APPLY_ORDER,
    Desired,
    Observed,
    Outcome,
    decide_actions,
    decide_status,
    desire,
    name_conflicts,
)
from addonstack.controller.objects import ObjectKey
from addonstack.render.stack import StackDefaults

DEFAULTS = StackDefaults()


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


def body(services: list[str], **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "addonstack.dev/v1alpha1",
        "kind": "AddonStack",
        "metadata": {"name": "s1", "namespace": "ns", "uid": "uid-1", "generation": 1},
        "spec": {"services": services, **spec},
    }


def served(obj: dict[str, Any], ready: bool = False) -> dict[str, Any]:
    """What the API server answers an apply with: the object plus generation/resourceVersion (and status)."""
    out = copy.deepcopy(obj)
    if obj["kind"] in ("Deployment", "StatefulSet", "Job", "Ingress", "NetworkPolicy"):
        out["metadata"]["generation"] = 1  # kinds with a spec count generations; the others only resourceVersion
    out["metadata"]["resourceVersion"] = "7"
    if obj["kind"] in ("Deployment", "StatefulSet"):
        n = int(obj["spec"].get("replicas", 1))
        out["status"] = {"observedGeneration": 1, "readyReplicas": n if ready else 0, "updatedReplicas": n}
    return out


def want(observed: Observed, cat: Catalog) -> Desired:
    desired = desire(observed, DEFAULTS, cat)
    assert isinstance(desired, Desired), desired
    return desired


def converge(b: dict[str, Any], cat: Catalog, cache: ApplyCache, ready: bool = True) -> list[dict[str, Any]]:
    """Apply everything once, recording it in ``cache``; the live children that result."""
    observed = Observed(b, [])
    desired = want(observed, cat)
    live = []
    for batch in decide_actions(desired, observed, cache).batches:
        for key, _obj, digest, _ in batch:
            result = served(desired.objects[key], ready)
            cache.record("s1", key, digest, result)
            live.append(result)
    return live


def kinds(batches: list[list[tuple[ObjectKey, Any, Any, Any]]]) -> list[str]:
    return [batch[0][0].kind for batch in batches]


def test_a_new_stack_applies_everything_in_kind_order_and_prunes_nothing(cat: Catalog) -> None:
    observed = Observed(body(["gatus", "it-tools"]), [])
    desired = want(observed, cat)
    actions = decide_actions(desired, observed, ApplyCache())
    order = kinds(actions.batches)
    assert order == sorted(order, key=APPLY_ORDER.index)
    assert len(order) == len(set(order)), "one batch per kind"
    assert {k for batch in actions.batches for k, *_ in batch} == set(desired.objects)
    assert "Deployment" in order and order.index("Secret") < order.index("Deployment")
    assert actions.prune == [] and actions.unchanged == {}
    owners = {o["metadata"]["ownerReferences"][0]["uid"] for o in desired.objects.values() if o["kind"] == "Deployment"}
    assert owners == {"uid-1"}


def test_a_converged_stack_writes_nothing(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    live = converge(b, cat, cache)
    observed = Observed(b, live)
    actions = decide_actions(want(observed, cat), observed, cache)
    assert actions.batches == [] and actions.prune == []
    assert len(actions.unchanged) == len(live)


def test_a_deleted_child_is_applied_again_and_an_edited_one_too(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    live = converge(b, cat, cache)
    deployment = next(o for o in live if o["kind"] == "Deployment")
    edited = copy.deepcopy(next(o for o in live if o["kind"] == "Service"))
    edited["metadata"]["resourceVersion"] = "8"  # a hand edit of an object without a generation
    rest = [o for o in live if o["kind"] not in ("Deployment", "Service")]
    observed = Observed(b, [*rest, edited])
    actions = decide_actions(want(observed, cat), observed, cache)
    redo = {key for batch in actions.batches for key, *_ in batch}
    assert redo == {ObjectKey.of(deployment), ObjectKey.of(edited)}


def test_a_removed_service_is_pruned_but_its_data_is_retained(cat: Catalog) -> None:
    cache = ApplyCache()
    live = converge(body(["gatus", "gotify"]), cat, cache)
    observed = Observed(body(["gatus"]), live)
    actions = decide_actions(want(observed, cat), observed, cache)
    pruned = {(k.kind, k.name) for k in actions.prune}
    assert ("Deployment", "gotify") in pruned or ("StatefulSet", "gotify") in pruned
    assert not any(kind in ("Secret", "PersistentVolumeClaim") for kind, _ in pruned), "Retain keeps data"
    gotify = [o for o in live if o["metadata"]["labels"].get(LABEL_SERVICE) == "gotify"]
    assert any(o["kind"] == "PersistentVolumeClaim" for o in gotify)


def test_with_deletion_policy_delete_data_of_a_removed_service_is_pruned(cat: Catalog) -> None:
    cache = ApplyCache()
    live = converge(body(["gatus", "gotify"], deletionPolicy="Delete"), cat, cache)
    observed = Observed(body(["gatus"], deletionPolicy="Delete"), live)
    pruned = {k.kind for k in decide_actions(want(observed, cat), observed, cache).prune}
    assert {"Secret", "PersistentVolumeClaim"} <= pruned


def test_objects_another_controller_owns_are_not_pruned(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    live = converge(b, cat, cache)
    slice_ = {
        "apiVersion": "discovery.k8s.io/v1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": "gatus-abcde",
            "namespace": "ns",
            "labels": {LABEL_SERVICE: "gatus"},
            "ownerReferences": [{"uid": "service-uid", "controller": True}],
        },
    }
    observed = Observed(b, [*live, slice_])
    assert decide_actions(want(observed, cat), observed, cache).prune == []


def test_an_invalid_spec_stalls_without_actions(cat: Catalog) -> None:
    outcome = desire(Observed(body(["gatus"], replicasTypo=3), []), DEFAULTS, cat)
    assert isinstance(outcome, Outcome)
    stalled = next(c for c in outcome.status["conditions"] if c["type"] == "Stalled")
    assert stalled["status"] == "True" and stalled["reason"] == "InvalidSpec"
    assert "replicasTypo" in stalled["message"]
    assert outcome.events and outcome.events[0][1] == "InvalidSpec"


def test_status_is_ready_only_when_workloads_are(cat: Catalog) -> None:
    cache = ApplyCache()
    b = body(["gatus"])
    for ready, expect in ((False, "False"), (True, "True")):
        live = converge(b, cat, ApplyCache(), ready=ready)
        observed = Observed(b, live)
        desired = want(observed, cat)
        outcome = decide_status(desired, observed, {ObjectKey.of(o): o for o in live}, [], [])
        cond = {c["type"]: c for c in outcome.status["conditions"]}
        assert cond["Ready"]["status"] == expect
        assert cond["Reconciling"]["status"] == ("False" if ready else "True")
        assert [e[1] for e in outcome.events] == (["Ready"] if ready else [])
    assert cache.entries == {}


def test_a_name_taken_by_another_stack_blocks_that_service_only(cat: Catalog) -> None:
    observed = Observed(body(["gatus", "it-tools"]), [])
    desired = want(observed, cat)
    key = next(k for k in desired.objects if k.kind == "Deployment" and k.name == "gatus")
    theirs = {"metadata": {"name": "gatus", "labels": {"addonstack.dev/stack": "other"}}}
    conflicts = name_conflicts("s1", desired.objects, {key: theirs})
    assert [sid for sid, _ in conflicts] == ["gatus"] and "AddonStack 'other'" in conflicts[0][1]
    actions = decide_actions(desired, observed, ApplyCache(), {"gatus"})
    services = {desired.objects[k]["metadata"]["labels"][LABEL_SERVICE] for b in actions.batches for k, *_ in b}
    assert "gatus" not in services and "it-tools" in services
    outcome = decide_status(desired, observed, {}, [], conflicts)
    stalled = next(c for c in outcome.status["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "NameConflict"


def test_forget_stack_drops_only_that_stacks_entries(cat: Catalog) -> None:
    cache = ApplyCache()
    converge(body(["gatus"]), cat, cache)
    other = ObjectKey("v1", "ConfigMap", "ns", "x")
    cache.record("s2", other, "d", {"metadata": {"resourceVersion": "1"}})
    assert len(cache.entries) > 1
    cache.forget_stack("ns", "s1")
    assert list(cache.entries) == [other]
    cache.forget_stack("ns", "s2")
    assert cache.entries == {} and cache.stacks == {}


# ---- the one rule set and truthful reasons -------------------------------------------------------------

DB = {"host": "postgres.example", "adminSecretRef": {"name": "pg-admin"}}


def stalled_reason(outcome: Desired | Outcome) -> tuple[str, str]:
    assert isinstance(outcome, Outcome), "expected a stalled verdict, got a plan"
    cond = {c["type"]: c for c in outcome.status["conditions"]}
    assert cond["Ready"]["status"] == "False" and cond["Stalled"]["status"] == "True"
    return cond["Stalled"]["reason"], cond["Stalled"]["message"]


def test_services_needing_postgres_without_a_database_stall_before_any_write(cat: Catalog) -> None:
    reason, message = stalled_reason(desire(Observed(body(["n8n"]), []), DEFAULTS, cat))
    assert reason == "DatabaseNotConfigured"
    assert "n8n needs PostgreSQL" in message and "spec.database.host" in message
    with_default = StackDefaults(database_host="db.example", database_admin_secret="pg-admin")
    assert isinstance(desire(Observed(body(["n8n"]), [], admin_secret_keys=None), with_default, cat), Desired)


def test_the_admin_secret_must_exist_with_both_keys(cat: Catalog) -> None:
    b = body(["n8n"], database=DB)
    for keys, words in ((frozenset(), "does not exist"), (frozenset({"username"}), "lacks the keys password")):
        reason, message = stalled_reason(desire(Observed(b, [], admin_secret_keys=keys), DEFAULTS, cat))
        assert reason == "AdminSecretMissing" and words in message
    ok = desire(Observed(b, [], admin_secret_keys=frozenset({"username", "password"})), DEFAULTS, cat)
    assert isinstance(ok, Desired)


def test_a_stack_needing_redis_without_redis_is_not_ready(cat: Catalog) -> None:
    reason, message = stalled_reason(desire(Observed(body(["baserow"], database=DB), []), DEFAULTS, cat))
    assert reason == "RedisNotConfigured" and "baserow needs Redis" in message
    fine = body(["baserow"], database=DB, redis={"host": "redis.example"})
    assert isinstance(desire(Observed(fine, []), DEFAULTS, cat), Desired)


def test_the_operator_refuses_what_validate_refuses(cat: Catalog) -> None:
    spec = {"overrides": {"n8n": {"imageTag": "1.0.0"}}}
    reason, message = stalled_reason(desire(Observed(body(["gatus"], **spec), []), DEFAULTS, cat))
    assert reason == "InvalidSpec" and message.startswith("overrides.n8n: n8n is not part of this stack")


def status_with(cat: Catalog, b: dict[str, Any], mutate: Any, pods: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    live = converge(b, cat, ApplyCache(), ready=False)
    for obj in live:
        mutate(obj)
    observed = Observed(b, live, pods=list(pods))
    outcome = decide_status(want(observed, cat), observed, {ObjectKey.of(o): o for o in live}, [], [])
    return outcome.status


def pod(service: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": f"{service}-1", "labels": {LABEL_SERVICE: service}}, "status": status}


@pytest.mark.parametrize(
    ("pod_status", "reason", "words"),
    [
        (
            {
                "containerStatuses": [
                    {
                        "name": "gatus",
                        "image": "x:9",
                        "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image"}},
                    }
                ]
            },
            "ImagePullFailed",
            "x:9",
        ),
        (
            {
                "containerStatuses": [
                    {
                        "name": "gatus",
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"reason": "Error", "exitCode": 3}},
                    }
                ]
            },
            "CrashLoopBackOff",
            "code 3",
        ),
        (
            {
                "containerStatuses": [
                    {
                        "name": "gatus",
                        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                        "lastState": {"terminated": {"reason": "OOMKilled", "exitCode": 137}},
                    }
                ]
            },
            "OOMKilled",
            "memory",
        ),
        (
            {
                "conditions": [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": "0/1 nodes: Insufficient memory",
                    }
                ]
            },
            "Unschedulable",
            "Insufficient memory",
        ),
    ],
)
def test_pods_name_the_reason_per_service_and_for_the_stack(
    cat: Catalog, pod_status: dict[str, Any], reason: str, words: str
) -> None:
    st = status_with(cat, body(["gatus", "it-tools"]), lambda o: None, (pod("gatus", **pod_status),))
    svc = {s["id"]: s for s in st["services"]}
    assert svc["gatus"]["reason"] == reason and words in svc["gatus"]["message"]
    assert svc["it-tools"]["reason"] == "Progressing"
    cond = {c["type"]: c for c in st["conditions"]}
    assert cond["Stalled"]["status"] == "True" and cond["Stalled"]["reason"] == reason
    assert cond["Reconciling"]["status"] == "False"


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        (
            'pods "gatus-1" is forbidden: exceeded quota: q, requested: pods=1, used: pods=0, limited: pods=0',
            "QuotaExceeded",
        ),
        ('pods "gatus-1" is forbidden: minimum memory usage per Container is 1Gi', "FailedCreate"),
    ],
)
def test_a_replicaset_that_may_not_create_pods_stalls_the_stack(cat: Catalog, message: str, reason: str) -> None:
    def refuse(obj: dict[str, Any]) -> None:
        if obj["kind"] == "Deployment":
            cond = {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": message}
            obj["status"]["conditions"] = [cond]

    st = status_with(cat, body(["gatus"]), refuse)
    assert st["services"][0]["reason"] == reason
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == reason and "gatus" in stalled["message"]


def test_a_failed_database_job_stalls_with_its_message(cat: Catalog) -> None:
    b = body(["n8n"], database=DB)
    keys = frozenset({"username", "password"})
    desired = want(Observed(b, [], admin_secret_keys=keys), cat)
    job = next(o for o in desired.objects.values() if o["kind"] == "Job")
    failed = copy.deepcopy(job)
    failed["status"] = {"conditions": [{"type": "Failed", "status": "True", "message": "BackoffLimitExceeded"}]}
    observed = Observed(b, [failed], admin_secret_keys=keys)
    desired = want(observed, cat)
    assert not any(o["kind"] == "Deployment" for o in desired.objects.values()), "n8n waits for its database"
    st = decide_status(desired, observed, {}, [], []).status
    stalled = next(c for c in st["conditions"] if c["type"] == "Stalled")
    assert stalled["reason"] == "DatabaseSetupFailed" and "BackoffLimitExceeded" in stalled["message"]
    assert st["services"][0]["reason"] == "WaitingForDatabase"


def test_validate_exits_1_with_the_operators_message(cat: Catalog, tmp_path: Path) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(body(["n8n"])))
    res = CliRunner().invoke(cli, ["validate", "-f", str(path), "--json"])
    assert res.exit_code == 1
    _, message = stalled_reason(desire(Observed(body(["n8n"]), []), DEFAULTS, cat))
    assert json.loads(res.output)["problems"] == [message]
    ok = CliRunner().invoke(cli, ["validate", "-f", str(path), "--database-host", "db", "--database-admin-secret", "a"])
    assert ok.exit_code == 0, ok.output
