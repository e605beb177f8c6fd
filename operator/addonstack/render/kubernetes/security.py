"""Pod and container security contexts from the catalog's ``podSecurity``, so a tenant namespace labelled
``pod-security.kubernetes.io/enforce: restricted`` admits every entry whose image allows it.

An entry at level ``restricted`` runs as its declared non-root user and group, drops every capability
(adding back only what it declares), uses the runtime's default seccomp profile and, when the image
allows, a read-only root filesystem. Each declared scratch path gets an ``emptyDir`` whether or not the root
filesystem is read-only: a non-root nginx or Apache cannot write its pid and cache under the image's root-owned
``/run`` or ``/var/cache/nginx``. Such a server binding port 80 needs neither root nor ``NET_BIND_SERVICE``:
the pod sysctl ``net.ipv4.ip_unprivileged_port_start`` (in the "safe" set every Pod Security level admits)
lowers the first unprivileged port of the pod's own network namespace. ``fsGroup`` (with
``fsGroupChangePolicy: OnRootMismatch``, so large volumes are not walked on every start) makes freshly
provisioned volumes writable for that user. Entries at ``baseline`` or ``privileged`` keep the image's
user; they still never escalate privileges and drop capabilities when the catalog says that is safe.
"""

from __future__ import annotations

from typing import Any

from addonstack.catalog.model import Service
from addonstack.constants import UNPRIVILEGED_PORT_SYSCTL

SCRATCH_PREFIX = "scratch-"
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


def _add_caps(svc: Service) -> list[str]:
    return list(svc.pod_security.add_capabilities) if svc.pod_security else []


def pod_security_context(svc: Service) -> dict[str, Any]:
    """The pod's ``securityContext``: user, group, volume group and seccomp profile (init containers too)."""
    ps = svc.pod_security
    sc: dict[str, Any] = {}
    if svc.pod_security_level == "restricted":
        sc["runAsNonRoot"] = True
    if svc.run_as_user is not None:
        sc["runAsUser"] = svc.run_as_user
        if svc.run_as_user != 0:
            sc["runAsNonRoot"] = True
    if ps is not None and ps.run_as_group is not None:
        sc["runAsGroup"] = ps.run_as_group
    if ps is not None and ps.fs_group is not None:
        sc["fsGroup"] = ps.fs_group
        sc["fsGroupChangePolicy"] = "OnRootMismatch"
    if ps is not None and ps.unprivileged_port_start is not None:
        sc["sysctls"] = [{"name": UNPRIVILEGED_PORT_SYSCTL, "value": str(ps.unprivileged_port_start)}]
    sc["seccompProfile"] = dict(RUNTIME_DEFAULT)
    return sc


def container_security_context(svc: Service) -> dict[str, Any]:
    """A container's ``securityContext``: no privilege escalation, capabilities, read-only root filesystem."""
    sc: dict[str, Any] = {"allowPrivilegeEscalation": False, "seccompProfile": dict(RUNTIME_DEFAULT)}
    caps: dict[str, Any] = {}
    if svc.pod_security_level == "restricted" or svc.cap_drop_compatible:
        caps["drop"] = ["ALL"]
    if add := _add_caps(svc):
        caps["add"] = add
    if caps:
        sc["capabilities"] = caps
    if svc.pod_security is not None and svc.pod_security.read_only_root_filesystem:
        sc["readOnlyRootFilesystem"] = True
    return sc


def scratch_volumes(svc: Service) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(pod volumes, container volumeMounts)``: one ``emptyDir`` per scratch path."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, path in enumerate(svc.scratch_paths):
        name = f"{SCRATCH_PREFIX}{i}"
        volumes.append({"name": name, "emptyDir": {}})
        mounts.append({"name": name, "mountPath": path})
    return volumes, mounts
