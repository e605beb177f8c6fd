"""Two shards on the dev cluster: each reconciles only its own stacks (server-side selected by bucket label)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from addonstack.constants import LABEL_SHARD_BUCKET
from addonstack.controller.settings import OperatorSettings
from addonstack.controller.shards import Shard, bucket_of
from tests.cluster.operator_harness import TEST_DEFAULTS, get_stack, operator_thread, stack, wait_ready

pytestmark = pytest.mark.cluster

DRIFT = 2.0


def _settings(kubeconfig: Path, index: int, lease_ns: str) -> OperatorSettings:
    base = OperatorSettings(defaults=TEST_DEFAULTS, drift_interval=DRIFT, health_port=None, kubeconfig=str(kubeconfig))
    return replace(base, shard=Shard(index, 2), lease_namespace=lease_ns)


@contextlib.contextmanager
def _namespaces(client: Client, stem: str, n: int) -> Iterator[list[str]]:
    """n namespaces, half of whose stacks "app" shard 0 owns: picked by hash, so never all on one shard."""
    candidates = [f"{stem}-{i}" for i in range(64)]
    per_shard = [[c for c in candidates if Shard(0, 2).owns(c, "app") == (k == 0)][: n // 2] for k in (0, 1)]
    names = per_shard[0] + per_shard[1]
    for name in names:
        client.create(Namespace(metadata=ObjectMeta(name=name, labels={"addonstack.dev/test": "true"})))
    try:
        yield names
    finally:
        for name in names:
            with contextlib.suppress(ApiError):
                client.delete(Namespace, name)


def test_each_shard_reconciles_only_its_stacks(client: Client, kubeconfig: Path, namespace: str) -> None:
    with _namespaces(client, namespace[:50], 6) as nss:
        owner = {ns: 0 if Shard(0, 2).owns(ns, "app") else 1 for ns in nss}
        assert set(owner.values()) == {0, 1}, "the namespaces' hashes put stacks on both shards"
        for ns in nss:
            client.create(codecs.from_dict(stack("app", ns, {"services": ["it-tools"]})))
        with operator_thread(_settings(kubeconfig, 0, namespace)):
            for ns in (n for n in nss if owner[n] == 0):
                obj = wait_ready(client, "app", ns)
                assert obj["metadata"]["labels"][LABEL_SHARD_BUCKET] == str(bucket_of(ns, "app"))
            time.sleep(3 * DRIFT)  # resyncs of shard 0: still nothing for shard 1's stacks
            for ns in (n for n in nss if owner[n] == 1):
                obj = get_stack(client, "app", ns)
                assert not obj.get("status") and LABEL_SHARD_BUCKET not in (obj["metadata"].get("labels") or {})
            with operator_thread(_settings(kubeconfig, 1, namespace)):
                for ns in (n for n in nss if owner[n] == 1):
                    wait_ready(client, "app", ns)
