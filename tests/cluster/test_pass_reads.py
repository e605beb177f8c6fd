"""What one pass reads, on the real API server.

The drift timer's passes over converged stacks are most of a large operator's steady load (400 stacks at the
default 60 s interval are almost 7 passes a second), so such a pass reads only what could have moved: the kinds
the stack records, its claims, the namespace's quotas. It lists no pods while every workload is settled, and a
stack without databases reads no admin Secret. What must stay exact: a stack whose plan needs a database reads
the admin Secret's key names before anything is written, and stalls when it is missing; a workload that is not
settled has its pods read for the reason they hold.
"""

from __future__ import annotations

import asyncio
import copy
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment

from addonstack.controller.applycache import ApplyCache
from addonstack.controller.cluster import CHILD_KINDS
from addonstack.controller.decide import Observed
from addonstack.controller.objects import ObjectKey
from addonstack.controller.reconcile import _read_pods, reconcile
from tests.cluster.operator_harness import (
    TEST_DEFAULTS,
    admin_secret,
    get_stack,
    running_operator,
    stack,
    wait_ready,
)
from tests.cluster.recording import Recording, recorded_pass

pytestmark = pytest.mark.cluster


def test_a_converged_stack_without_databases_reads_no_pods_and_no_admin_secret(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    with running_operator(kubeconfig, drift_interval=600.0):
        client.create(codecs.from_dict(stack("calm", namespace, {"services": ["gatus", "it-tools"]})))
        body = wait_ready(client, "calm", namespace, timeout=90)
    outcome, cluster = recorded_pass(kubeconfig, body, full=False)  # the drift timer's kind of pass
    kinds = {kind for kind, _ in cluster.seen_reads}
    assert "Pod" not in kinds, cluster.seen_reads
    assert ("Secret", TEST_DEFAULTS.database_admin_secret) not in cluster.seen_reads, cluster.seen_reads
    assert {"Deployment", "Service", "Secret", "ConfigMap", "Lease"} <= kinds  # it did look at what can move
    assert cluster.seen_writes == []
    assert outcome.status["conditions"] == body["status"]["conditions"]
    assert outcome.status["applied"] == body["status"]["applied"]

    # A workload that is not settled has its pods read: they say why (image pull, crash loop, unschedulable).
    live = client.get(Deployment, "gatus", namespace=namespace).to_dict()
    key = ObjectKey("apps/v1", "Deployment", namespace, "gatus")
    starting = copy.deepcopy(live)
    starting["status"]["readyReplicas"] = 0

    async def pods_read(workload: dict[str, Any]) -> tuple[list[dict[str, Any]], Recording]:
        recording = Recording.from_kubeconfig(str(kubeconfig))
        observed = Observed(body, [])
        try:
            await _read_pods(recording, observed, {key: workload})
        finally:
            await recording.close()
        return observed.pods, recording

    pods, recording = asyncio.run(pods_read(live))
    assert pods == [] and recording.seen_reads == []
    pods, recording = asyncio.run(pods_read(starting))
    assert recording.seen_reads == [("Pod", "*")]
    assert {p["metadata"]["labels"]["addonstack.dev/service"] for p in pods} == {"gatus", "it-tools"}


def test_a_stack_with_a_database_reads_the_admin_secret_before_writing(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    # No operator runs: each pass is made here, so what it read and wrote is exactly this pass's.
    client.create(codecs.from_dict(stack("needs-db", namespace, {"services": ["n8n"]})))
    body = get_stack(client, "needs-db", namespace)
    admin = ("Secret", TEST_DEFAULTS.database_admin_secret)

    outcome, cluster = recorded_pass(kubeconfig, body, full=True)
    stalled = {c["type"]: c for c in outcome.status["conditions"]}["Stalled"]
    assert stalled["status"] == "True" and stalled["reason"] == "AdminSecretMissing", stalled
    assert "does not exist" in stalled["message"]
    assert cluster.seen_reads.count(admin) == 1 and cluster.seen_writes == []

    admin_secret(client, namespace)
    outcome, cluster = recorded_pass(kubeconfig, body, full=True)
    assert cluster.seen_reads.count(admin) == 1
    assert any(w.startswith("apply Job/") for w in cluster.seen_writes), cluster.seen_writes  # the database setup Job
    assert {c["type"]: c["status"] for c in outcome.status["conditions"]}["Stalled"] == "False"


def test_the_light_drift_check_of_a_ready_stack_lists_only_unwatched_kinds_and_sees_them_move(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    """Between full passes the timer's check of a Ready stack lists only the kinds no watch reports on (here its
    Ingress): nothing moved, nothing more is read or written; a deleted Ingress sends it on to a full pass, which
    puts it back. A stack whose every kind is watched (NetworkPolicies are) reads nothing."""
    from lightkube.resources.networking_v1 import Ingress

    from addonstack.controller.handlers import _steady, _unwatched_unchanged

    with running_operator(kubeconfig, drift_interval=600.0):
        spec = {"services": ["gatus"], "ingress": {"host": "apps.example.com"}}
        client.create(codecs.from_dict(stack("light", namespace, spec)))
        body = wait_ready(client, "light", namespace, timeout=90)
    assert _steady(body)
    ingresses = [n for n in body["status"]["applied"] if n.startswith("Ingress/")]
    assert ingresses, body["status"]["applied"]
    assert any(n.startswith("NetworkPolicy/") for n in body["status"]["applied"])

    async def check(stack: dict[str, Any] = body) -> tuple[bool, Recording]:
        recording = Recording.from_kubeconfig(str(kubeconfig))
        try:
            return await _unwatched_unchanged(recording, stack), recording
        finally:
            await recording.close()

    clean, recording = asyncio.run(check())
    assert clean
    assert recording.seen_reads == [("Ingress", "*")] and recording.seen_writes == []

    watched_only = copy.deepcopy(body)
    watched_only["status"]["applied"] = {n: v for n, v in body["status"]["applied"].items() if n not in ingresses}
    clean, recording = asyncio.run(check(watched_only))
    assert clean and recording.seen_reads == []

    client.delete(Ingress, ingresses[0].partition("/")[2], namespace=namespace)
    clean, _ = asyncio.run(check())
    assert not clean, "an Ingress gone by hand: the full pass must run"
    outcome, recording = recorded_pass(kubeconfig, body, full=False)
    assert f"apply {ingresses[0]}" in recording.seen_writes
    body["status"] = outcome.status  # what that pass would patch: the new policy's marker in the record
    clean, _ = asyncio.run(check())
    assert clean


def test_an_event_pass_reads_the_watched_kinds_from_the_streams_store_as_a_list_would_return_them(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    """A child's event pass over a converged stack takes the kinds the watch streams keep (controller/store.py)
    from the store: the same objects a LIST returns, so the same decision, no write. A kind whose recorded
    objects the store does not hold as recorded (here a ConfigMap whose newer version the store has not seen, as
    when the operator's own write has not come back yet) is listed instead."""
    from addonstack.controller.childwatch import KindWatch, stream_client
    from addonstack.controller.store import STORED_KINDS, ChildStore
    from addonstack.controller.watch import WATCHED

    with running_operator(kubeconfig, drift_interval=600.0):
        client.create(codecs.from_dict(stack("kept", namespace, {"services": ["gatus", "it-tools"]})))
        body = wait_ready(client, "kept", namespace, timeout=90)

    async def main() -> tuple[dict[str, list[Any]], Any, Recording, Recording]:
        store, api = ChildStore(), stream_client(str(kubeconfig))
        tasks = [
            asyncio.create_task(KindWatch(api, w, namespace, 50, store).follow(lambda t, b: None)) for w in WATCHED
        ]
        cluster = Recording.from_kubeconfig(str(kubeconfig))
        try:
            async with asyncio.timeout(20):
                while not all((kind, namespace) in store.synced for kind in STORED_KINDS):
                    await asyncio.sleep(0.05)
            compared: dict[str, list[Any]] = {}
            for api_version, kind in CHILD_KINDS:
                if kind in STORED_KINDS:
                    listed = await cluster.list_children(namespace, "kept", ((api_version, kind),))
                    kept = store.children(kind, namespace, "kept")
                    compared[kind] = [_by_name(listed), _by_name(kept or [])]
            cluster.seen_reads.clear()
            outcome = await reconcile(body, cluster, TEST_DEFAULTS, ApplyCache(), full=False, store=store)
            for task in tasks:  # the store no longer follows: what changes now, it does not see
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            behind = Recording.from_kubeconfig(str(kubeconfig))
            edited = copy.deepcopy(body)
            name = next(n for n in body["status"]["applied"] if n.startswith("ConfigMap/"))
            live = await behind.get("v1", "ConfigMap", namespace, name.partition("/")[2])
            assert live is not None
            live["metadata"].pop("managedFields", None)
            live["metadata"]["labels"]["touched"] = "yes"  # a newer version, recorded as ours
            answer = await behind.apply(live)
            edited["status"]["applied"][name] = "{}@r{}".format(
                body["status"]["applied"][name].partition("@")[0], answer["metadata"]["resourceVersion"]
            )
            behind.seen_reads.clear()
            await reconcile(edited, behind, TEST_DEFAULTS, ApplyCache(), full=False, store=store)
            await behind.close()
            return compared, outcome, cluster, behind
        finally:
            await cluster.close()
            await api.close()

    compared, outcome, cluster, behind = asyncio.run(main())
    for kind, (listed, kept) in compared.items():
        assert listed == kept, kind  # the store's plain dicts are what the client's LIST returns
    assert compared["Deployment"][0] and compared["Secret"][0] and compared["Service"][0]
    listed_kinds = {kind for kind, name in cluster.seen_reads if name == "*"}
    assert not listed_kinds & {kind for _, kind in CHILD_KINDS}, cluster.seen_reads  # all came from the store
    assert cluster.seen_writes == []
    assert outcome.status["conditions"] == body["status"]["conditions"]
    assert outcome.status["applied"] == body["status"]["applied"]
    behind_kinds = {kind for kind, name in behind.seen_reads if name == "*"}
    assert "ConfigMap" in behind_kinds and "Deployment" not in behind_kinds, behind.seen_reads
    assert not any(w.startswith("apply ConfigMap/") for w in behind.seen_writes[1:]), behind.seen_writes


def _by_name(objs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for obj in copy.deepcopy(objs):
        obj["metadata"].pop("managedFields", None)
        out[obj["metadata"]["name"]] = obj
    return out
