"""A local Kubernetes control plane for tests and demos, built from Go modules and run without Docker."""

from addonstack.devcluster.cluster import (
    DEFAULT_BIN_DIR,
    K8S_VERSION,
    DevCluster,
    DevClusterError,
    ensure_binaries,
    find_binaries,
    missing_binaries,
    pid_alive,
)
from addonstack.devcluster.pki import CertPair, Pki, PkiError, ensure_pki, issue_client_cert

__all__ = [
    "DEFAULT_BIN_DIR",
    "K8S_VERSION",
    "CertPair",
    "DevCluster",
    "DevClusterError",
    "Pki",
    "PkiError",
    "ensure_binaries",
    "ensure_pki",
    "find_binaries",
    "issue_client_cert",
    "missing_binaries",
    "pid_alive",
]
