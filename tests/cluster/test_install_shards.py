"""The sharded chart installs: `helm install --set shards.count=2`, each shard's Deployment command run with the
chart's ServiceAccount token, and each shard reconciles exactly its own stacks (and no request is refused)."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client, codecs
from lightkube.resources.apps_v1 import Deployment

from addonstack.controller.shards import Shard
from tests.cluster.operator_harness import stack, wait_ready
from tests.cluster.test_install import (
    SA,
    OperatorProcess,
    _handled,
    _helm_install,
    _no_permission_errors,
    _token_kubeconfig,
    _tool,
    apps_namespace,
)

pytestmark = pytest.mark.cluster
__all__ = ["apps_namespace"]  # the fixture, shared with test_install

SHARDS = 2
STACKS = {"s-gotify": "gotify", "s-qdrant": "qdrant", "s-ntfy": "ntfy", "s-memos": "memos", "s-it": "it-tools"}


def _shard_of(namespace: str, name: str) -> int:
    return next(i for i in range(SHARDS) if Shard(i, SHARDS).owns(namespace, name))


def _on_every_shard(namespace: str) -> dict[str, str]:
    """STACKS, with the last name varied until the stacks land on every shard (the namespace is random, and
    with five names about one run in 16 put them all on one shard of two)."""
    names = list(STACKS)
    for n in range(100):
        last = names[-1] if n == 0 else f"{names[-1]}-{n}"
        chosen = {**{k: STACKS[k] for k in names[:-1]}, last: STACKS[names[-1]]}
        if len({_shard_of(namespace, k) for k in chosen}) == SHARDS:
            return chosen
    return dict(STACKS)


@contextlib.contextmanager
def _shard_processes(client: Client, ops: str, kubeconfig: Path, logs: Path) -> Iterator[list[OperatorProcess]]:
    procs: list[OperatorProcess] = []
    try:
        for i in range(SHARDS):
            container = client.get(Deployment, f"{SA}-shard-{i}", namespace=ops).spec.template.spec.containers[0]
            env = {e.name: e.value for e in container.env or [] if e.value is not None}
            penv = {**os.environ, **env, "KUBECONFIG": str(kubeconfig), "POD_ID": f"shard-{i}", "POD_NAMESPACE": ops,
                    "ADDONSTACK_HEALTH_PORT": "0", "ADDONSTACK_METRICS_BIND_ADDRESS": "0"}  # fmt: skip
            log = logs / f"shard-{i}.log"
            with log.open("wb") as fh:
                proc = subprocess.Popen(
                    [sys.executable, "-c", "from addonstack.cli.main import main; main()", *(container.args or [])],
                    stdout=fh, stderr=subprocess.STDOUT, env=penv,
                )  # fmt: skip
            procs.append(OperatorProcess(proc, log, ""))
        yield procs
    finally:
        for p in procs:
            p.stop()


def test_the_sharded_chart_installs_and_each_shard_serves_only_its_stacks(
    admin_client: Client, kubeconfig: Path, namespace: str, apps_namespace: str, tmp_path: Path
) -> None:
    ops, apps = namespace, apps_namespace
    _helm_install(_tool("helm"), kubeconfig, ops, apps, "--set", f"shards.count={SHARDS}")
    stacks = _on_every_shard(apps)
    owner = {name: _shard_of(apps, name) for name in stacks}
    assert len(set(owner.values())) == SHARDS, f"pick stack names that land on both shards: {owner}"
    sa_config = _token_kubeconfig(admin_client, kubeconfig, ops, tmp_path / "sa.kubeconfig")
    with _shard_processes(admin_client, ops, sa_config, tmp_path) as procs:
        for name, service in stacks.items():
            admin_client.create(codecs.from_dict(stack(name, apps, {"services": [service]})))
        for name in stacks:
            wait_ready(admin_client, name, apps, timeout=90)
        for i, proc in enumerate(procs):
            handled = set(_handled(proc.text(), apps)) & set(stacks)  # (children's events name the child)
            assert handled == {n for n, o in owner.items() if o == i}, (i, handled, owner)
            assert proc.proc.poll() is None, proc.text()[-3000:]
        _no_permission_errors(procs)
