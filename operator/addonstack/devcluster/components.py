"""The control plane as data: each component once, with its binary, flags, readiness probe and log.

``DevCluster.up`` starts the components in the order of ``COMPONENTS`` and ``start_component`` restarts
one from the same entry, so adding a flag or a component is one edit here. Flags are made from a
``Layout`` (ports, certificates, data and kubeconfig paths) and recorded in state.json, so a restart
from another process uses exactly the flags of the first start.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from addonstack.devcluster.access import request, ssl_context
from addonstack.devcluster.binaries import KWOK_STAGES
from addonstack.devcluster.pki import Pki

LOOPBACK = "127.0.0.1"
# One port per component (its health endpoint; the apiserver's and etcd's serve clients too) and etcd's peer port.
PORT_NAMES = ("etcd", "etcd-peer", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


@dataclass(frozen=True)
class Layout:
    """Where one cluster's pieces are; every component's flags are made from this."""

    ports: Mapping[str, int]  # by PORT_NAMES
    pki: Pki
    data_dir: Path
    kubeconfig: Path
    bin_dir: Path
    profiling: bool = False  # kube-apiserver's /debug/pprof (bench/operator.py --profile); off like the others

    @property
    def server(self) -> str:
        return f"https://{LOOPBACK}:{self.ports['kube-apiserver']}"

    def http(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.ports[name]}"


class Trust(Enum):
    """How a readiness probe connects."""

    PLAIN = "plain"  # plain HTTP
    SERVING = "serving"  # HTTPS; the serving certificate is checked against the cluster CA
    ADMIN = "admin"  # HTTPS with the admin client certificate


def _says_ok(body: str) -> bool:
    return body == "ok"


@dataclass(frozen=True)
class Probe:
    """A readiness check: GET ``path`` on the component's port; ready when ``healthy(body)``."""

    path: str
    trust: Trust
    healthy: Callable[[str], bool] = _says_ok

    def ready(self, port: int, pki: Pki) -> Callable[[], bool]:
        scheme = "http" if self.trust is Trust.PLAIN else "https"
        url = f"{scheme}://{LOOPBACK}:{port}{self.path}"
        ctx = (
            None
            if self.trust is Trust.PLAIN
            else ssl_context(pki.ca.cert, pki.admin if self.trust is Trust.ADMIN else None)
        )
        return lambda: self.healthy(request(url, ctx))


@dataclass(frozen=True)
class Component:
    """One process of the control plane: ``name`` is its binary in the binaries dir and its log's name."""

    name: str
    flags: Callable[[Layout], list[str]]
    probe: Probe

    def binary(self, bin_dir: Path) -> Path:
        return bin_dir / self.name

    def log(self, log_dir: Path) -> Path:
        return log_dir / f"{self.name}.log"


def _etcd(lay: Layout) -> list[str]:
    client, peer = lay.http("etcd"), lay.http("etcd-peer")
    return [
        "--name=dev", f"--data-dir={lay.data_dir}",
        f"--listen-client-urls={client}", f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}", f"--initial-cluster=dev={peer}",
        "--log-level=warn", "--quota-backend-bytes=2147483648", "--unsafe-no-fsync=true",
    ]  # fmt: skip


def _apiserver(lay: Layout) -> list[str]:
    p = lay.pki
    return [
        f"--etcd-servers={lay.http('etcd')}",
        f"--bind-address={LOOPBACK}", f"--advertise-address={LOOPBACK}",
        f"--secure-port={lay.ports['kube-apiserver']}",
        f"--tls-cert-file={p.apiserver.cert}", f"--tls-private-key-file={p.apiserver.key}",
        f"--client-ca-file={p.ca.cert}",
        "--authorization-mode=RBAC",
        "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
        f"--service-account-key-file={p.sa_pub}", f"--service-account-signing-key-file={p.sa_key}",
        "--service-cluster-ip-range=10.96.0.0/16",
        "--endpoint-reconciler-type=none",  # a loopback advertise address is invalid for Endpoints
        "--disable-admission-plugins=ServiceAccount",  # like envtest: no wait for `default` SA
        "--allow-privileged=true",
        "--enable-priority-and-fairness=false", f"--profiling={str(lay.profiling).lower()}", "--v=1",
    ]  # fmt: skip


def _controller_common(lay: Layout, name: str) -> list[str]:
    # No --authentication/--authorization-kubeconfig: their health endpoints are always allowed, and
    # without a requestheader CA on the apiserver the delegated authn only fills the logs with errors.
    p = lay.pki
    return [
        f"--kubeconfig={lay.kubeconfig}", f"--bind-address={LOOPBACK}", f"--secure-port={lay.ports[name]}",
        "--leader-elect=false",
        f"--tls-cert-file={p.components.cert}", f"--tls-private-key-file={p.components.key}",
        "--kube-api-qps=100", "--kube-api-burst=200", "--profiling=false", "--v=1",
    ]  # fmt: skip


def _controller_manager(lay: Layout) -> list[str]:
    p = lay.pki
    return [
        *_controller_common(lay, "kube-controller-manager"),
        f"--service-account-private-key-file={p.sa_key}", f"--root-ca-file={p.ca.cert}",
        f"--cluster-signing-cert-file={p.ca.cert}", f"--cluster-signing-key-file={p.ca.key}",
        # The in-tree test provisioner: claims bind like on a real cluster (no pods ever mount them).
        "--enable-hostpath-provisioner=true",
    ]  # fmt: skip


def _scheduler(lay: Layout) -> list[str]:
    return _controller_common(lay, "kube-scheduler")


def _kwok(lay: Layout) -> list[str]:
    return [
        f"--kubeconfig={lay.kubeconfig}", "--manage-all-nodes=true",
        *(f"--config={lay.bin_dir / 'kwok-stages' / s}" for s in KWOK_STAGES),
        "--node-lease-duration-seconds=40", f"--node-ip={LOOPBACK}", "--cidr=10.0.0.0/24",
        f"--server-address={LOOPBACK}:{lay.ports['kwok']}",  # health + metrics; --node-port means 0.0.0.0
    ]  # fmt: skip


def _etcd_healthy(body: str) -> bool:
    return bool(json.loads(body).get("health") == "true")


# In start order: each needs the ones before it.
COMPONENTS = (
    Component("etcd", _etcd, Probe("/health", Trust.PLAIN, _etcd_healthy)),
    Component("kube-apiserver", _apiserver, Probe("/readyz", Trust.ADMIN)),
    Component("kube-controller-manager", _controller_manager, Probe("/healthz", Trust.SERVING)),
    Component("kube-scheduler", _scheduler, Probe("/healthz", Trust.SERVING)),
    Component("kwok", _kwok, Probe("/healthz", Trust.PLAIN)),
)
BY_NAME = {c.name: c for c in COMPONENTS}
