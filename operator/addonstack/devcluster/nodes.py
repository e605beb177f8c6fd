"""What the dev cluster holds once it is up: two kwok fake nodes and a default StorageClass.

Fake nodes make Deployments, Jobs and namespace deletion behave as in a real cluster at a fraction of the
memory; one is arm64 and one offers a GPU, so node selection and GPU limits are exercised too.
"""

from __future__ import annotations

from typing import Any

from addonstack.devcluster.binaries import K8S_VERSION

# Default StorageClass served by kube-controller-manager's hostpath provisioner (test clusters only).
STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}


def fake_node(name: str, arch: str, labels: dict[str, str], resources: dict[str, str]) -> dict[str, Any]:
    """A kwok-managed Node. No kwok taint: operator-made workloads carry no toleration for it."""
    res = {"cpu": "32", "memory": "256Gi", "pods": "110", **resources}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "type": "kwok",
                **labels,
            },
        },
        "status": {
            "allocatable": res,
            "capacity": res,
            "nodeInfo": {"architecture": arch, "operatingSystem": "linux", "kubeletVersion": K8S_VERSION},
            "phase": "Running",
        },
    }


NODES = (
    fake_node("kwok-node-0", "amd64", {"nvidia.com/gpu.present": "true"}, {"nvidia.com/gpu": "1"}),
    fake_node("kwok-node-1", "arm64", {}, {}),
)
