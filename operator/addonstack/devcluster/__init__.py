"""A local Kubernetes control plane for tests and demos, built from Go modules and run without Docker."""

from addonstack.devcluster.binaries import (
    DEFAULT_BIN_DIR,
    K8S_VERSION,
    ensure_binaries,
    find_binaries,
    missing_binaries,
)
from addonstack.devcluster.cluster import DevCluster
from addonstack.devcluster.components import COMPONENTS, Component, Probe
from addonstack.devcluster.nodes import fake_node
from addonstack.devcluster.pki import CertPair, Pki, PkiError, ensure_pki, issue_client_cert
from addonstack.devcluster.processes import DevClusterError, cpu_seconds, free_ports, pid_alive, rss_mib

__all__ = [
    "COMPONENTS",
    "DEFAULT_BIN_DIR",
    "K8S_VERSION",
    "CertPair",
    "Component",
    "DevCluster",
    "DevClusterError",
    "Pki",
    "PkiError",
    "Probe",
    "cpu_seconds",
    "ensure_binaries",
    "ensure_pki",
    "fake_node",
    "find_binaries",
    "free_ports",
    "issue_client_cert",
    "missing_binaries",
    "pid_alive",
    "rss_mib",
]
