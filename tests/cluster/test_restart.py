"""A restarted operator (or a new leader) writes nothing over unchanged stacks, and still repairs what changed.

What was applied is kept in each stack's ``status.applied`` (controller/applied.py). The writes are counted by
the API server itself (``apiserver_request_total`` from its /metrics), not by the operator.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client, codecs
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig
from lightkube.resources.core_v1 import ConfigMap
from lightkube.types import PatchType

from addonstack.constants import LABEL_STACK
from addonstack.controller.settings import OperatorSettings
from addonstack.devcluster.apimetrics import operator_reads, operator_writes, request_counts
from tests.cluster.operator_harness import TEST_DEFAULTS, get_stack, operator_thread, stack, wait_for, wait_ready

pytestmark = pytest.mark.cluster

DRIFT = 2.0
STACKS = {"one": ["gatus", "it-tools"], "two": ["gotify", "excalidraw"]}  # one namespace: no shared names


def _http(kubeconfig: Path) -> Any:
    config = KubeConfig.from_file(str(kubeconfig))
    return client_adapter.Client(config.get(), client_adapter.ConnectionParams())


def _settings(kubeconfig: Path, namespace: str) -> OperatorSettings:
    """An operator of this namespace only: stacks other tests leave being deleted elsewhere are not its work."""
    return OperatorSettings(defaults=TEST_DEFAULTS, drift_interval=DRIFT, health_port=None,
                            kubeconfig=str(kubeconfig), namespaces=(namespace,))  # fmt: skip


def test_a_restart_writes_nothing_but_the_repair_of_a_child_edited_while_down(
    client: Client, kubeconfig: Path, namespace: str
) -> None:
    names = {}
    with operator_thread(_settings(kubeconfig, namespace)):
        for name, services in STACKS.items():
            client.create(codecs.from_dict(stack(name, namespace, {"services": services})))
            names[name] = namespace
        for name, ns in names.items():
            wait_ready(client, name, ns)
        time.sleep(2 * DRIFT)  # PVC binding and the like settle; their new resourceVersions are recorded
    for name, ns in names.items():
        record = (get_stack(client, name, ns).get("status") or {}).get("applied") or {}
        assert len(record) > 5 and all("@" in v for v in record.values()), record
    # While no operator runs, someone edits one child: the restart must put it back (one write) and nothing else.
    cm = next(
        c for c in client.list(ConfigMap, namespace=names["one"], labels={LABEL_STACK: "one"}) if c.metadata and c.data
    )
    key = next(iter(cm.data or {}))
    client.patch(ConfigMap, cm.metadata.name, {"data": {key: "edited"}}, namespace=names["one"],
                 patch_type=PatchType.MERGE, field_manager="someone")  # fmt: skip
    http = _http(kubeconfig)
    before = request_counts(http)
    # The new process lists what exists in pages of one object (the default is 250): stacks and children found
    # over several pages are resumed as when they came in one LIST.
    with operator_thread(replace(_settings(kubeconfig, namespace), list_chunk_size=1)):

        def restored() -> bool:
            live = client.get(ConfigMap, cm.metadata.name, namespace=names["one"])
            return (live.data or {}).get(key) == (cm.data or {}).get(key)

        wait_for("the edited ConfigMap to be restored", restored, timeout=60)
        time.sleep(3 * DRIFT)  # several resyncs of every stack by the new process
        delta = request_counts(http)
    delta.subtract(before)
    # The window counts every client, and the namespace controller may still be emptying the namespaces of
    # earlier tests (DELETEs, POSTs of kube-root-ca.crt): counted are the verbs this operator writes an unchanged
    # stack with, server-side apply of children and patches of AddonStacks and their status.
    writes = {k: n for k, n in operator_writes(delta).items() if k.startswith(("APPLY ", "PATCH addonstacks"))}
    assert operator_reads(delta) > 0, "the new operator read the stacks"
    assert delta[("LIST", "addonstacks", "")] >= len(STACKS), "kopf listed the stacks one page at a time"
    # The repair (one apply) and its record in that stack's status: nothing for the unchanged stack.
    assert writes == {"APPLY configmaps": 1, "PATCH addonstacks/status": 1}, writes
