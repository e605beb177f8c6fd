"""The operator survives the API server and etcd going away under load, and recovers by itself.

These tests stop and restart control-plane components, so they run on a DevCluster of their own (module
fixture, own directory and ports): the session's cluster, which other tests share, is never touched. The
operator runs as a separate process, as in production. In each round a stack is created and the component
taken down while the operator reconciles it; after the restart another stack is created and an existing one
changed. All of them must become Ready with no manual action and the same operator process still running.
The new stack proves kopf's watch resumed: the drift timer only knows objects the watch has delivered.
Two figures per round: how soon the operator handled the new stack, and how soon every stack was Ready,
which also waits for kube-controller-manager (after etcd and the API server crash together, its StatefulSet
controller retries with backoff on a stale cache for about a minute).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from functools import partial
from pathlib import Path

import pytest
from lightkube import Client, codecs
from lightkube.config.kubeconfig import KubeConfig
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

from addonstack.controller.cluster import AddonStackResource
from addonstack.devcluster import DevCluster, find_binaries
from tests.cluster.operator_harness import admin_secret, get_stack, install_crd, stack, wait_for, wait_ready
from tests.cluster.operator_process import OperatorProcess
from tests.devclusters import started
from tests.figures import record

pytestmark = pytest.mark.cluster

DOWNTIME = 4.0  # seconds each component stays down
# round -> (components in start order, SIGKILL instead of SIGTERM)
ROUNDS: dict[str, tuple[tuple[str, ...], bool]] = {
    "apiserver": (("kube-apiserver",), False),  # a graceful restart (upgrade, config change)
    "etcd": (("etcd",), False),
    "both-killed": (("etcd", "kube-apiserver"), True),  # both crash at once (lost node)
}


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster]:
    with started(DevCluster(tmp_path_factory.mktemp("restart-cluster"), find_binaries())) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def own_client(own_cluster: DevCluster) -> Iterator[Client]:
    c = Client(config=KubeConfig.from_file(str(own_cluster.kubeconfig)), field_manager="addonstack-tests")
    install_crd(c)
    yield c
    c.close()


def _namespace(client: Client, stem: str) -> str:
    name = f"r-{stem}-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=name)))
    admin_secret(client, name)
    return name


def _create(client: Client, name: str, ns: str, services: list[str]) -> None:
    client.create(codecs.from_dict(stack(name, ns, {"services": services})))


def _ready_all(client: Client, stacks: list[tuple[str, str]], since: float, timeout: float) -> dict[str, float]:
    """Seconds from ``since`` until each stack was Ready (polled in order, so later ones may be early)."""
    out = {}
    for name, ns in stacks:
        wait_ready(client, name, ns, timeout=timeout)
        out[name] = time.monotonic() - since
    return out


def _reconciled(client: Client, name: str, ns: str) -> bool:
    """The operator has acted on the stack's current generation (status written), Ready or not."""
    obj = get_stack(client, name, ns)
    return bool((obj.get("status") or {}).get("observedGeneration") == obj["metadata"].get("generation"))


def test_operator_recovers_from_apiserver_and_etcd_restarts(
    own_cluster: DevCluster, own_client: Client, tmp_path: Path
) -> None:
    client = own_client
    namespaces = {"base": _namespace(client, "base")} | {r: _namespace(client, r) for r in ROUNDS}
    op = OperatorProcess(own_cluster.kubeconfig, tmp_path / "operator.log", list(namespaces.values()))
    op.start()
    figures: dict[str, float] = {}
    reacted: dict[str, float] = {}
    try:
        op.wait_started()
        base = namespaces["base"]
        _create(client, "base", base, ["n8n", "qdrant"])
        wait_ready(client, "base", base, timeout=120)
        wanted = ["n8n", "qdrant"]

        for round_, (components, hard) in ROUNDS.items():
            ns = namespaces[round_]
            # In flight when the component goes: the operator is applying this stack's children.
            _create(client, "during", ns, ["miniflux", "gotify"])
            time.sleep(0.5)
            t_down = time.monotonic()
            for comp in reversed(components):
                own_cluster.stop_component(comp, hard=hard)
            time.sleep(DOWNTIME)
            for comp in components:
                own_cluster.start_component(comp)
            back = time.monotonic()
            print(f"\n{round_}: down and up again in {back - t_down:.1f}s", flush=True)
            # After: a brand-new stack (only a resumed watch can deliver it) and a spec change to an old one.
            _create(client, "after", ns, ["ntfy", "meilisearch"])
            wanted = ["n8n", "qdrant", "uptime-kuma"] if len(wanted) == 2 else ["n8n", "qdrant"]
            client.patch(AddonStackResource, "base", {"spec": {"services": wanted}}, namespace=base,
                         patch_type=PatchType.MERGE)  # fmt: skip
            wait_for("the operator to handle the new stack", partial(_reconciled, client, "after", ns), timeout=120)
            reacted[round_] = time.monotonic() - back
            ready = _ready_all(client, [("after", ns), ("base", base), ("during", ns)], back, timeout=150)
            figures[round_] = max(ready.values())
            print(f"{round_}: operator handled a new stack {reacted[round_]:.1f}s after the restart; Ready: "
                  + ", ".join(f"{k} {v:.1f}s" for k, v in ready.items()), flush=True)  # fmt: skip
            assert op.alive(), f"the operator exited after the {round_} restart:\n{op.output()[-3000:]}"
            services = {s["id"] for s in get_stack(client, "base", base)["status"]["services"]}
            assert services == set(wanted), services
    finally:
        op.stop()
    assert op.starts == 1, "the operator was never restarted by hand"
    record(
        f"\nrecovery after restart (downtime {DOWNTIME:.0f}s each; from the component healthy again): operator "
        "handled a new stack in "
        + ", ".join(f"{k} {v:.1f}s" for k, v in reacted.items())
        + "; every stack Ready in "
        + ", ".join(f"{k} {v:.1f}s" for k, v in figures.items())
        + " (Ready also waits for kube-controller-manager's controllers to catch up)"
    )
