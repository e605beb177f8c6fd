"""Pod and container security contexts from the catalog's ``podSecurity``, so a tenant namespace labelled
``pod-security.kubernetes.io/enforce: restricted`` admits every entry whose image allows it.

An entry at level ``restricted`` runs as its declared non-root user and group, drops every capability
(adding back only what it declares), uses the runtime's default seccomp profile and, when the image
allows, a read-only root filesystem with an ``emptyDir`` for each scratch path. ``fsGroup`` (with
``fsGroupChangePolicy: OnRootMismatch``, so large volumes are not walked on every start) makes freshly
provisioned volumes writable for that user. Entries at ``baseline`` or ``privileged`` keep the image's
user; they still never escalate privileges and drop capabilities when the catalog says that is safe.
"""

from __future__ import annotations

from typing import Any

from addonstack.catalog.model import Service

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


def scratch_paths(svc: Service) -> list[str]:
    """Writable scratch paths under a read-only root filesystem, minus those a persistent volume covers."""
    ps = svc.pod_security
    if ps is None or not ps.read_only_root_filesystem:
        return []
    mounted = {v.container_path.rstrip("/") for v in svc.volumes}
    return [path for path in ps.writable_paths if path.rstrip("/") not in mounted]


def scratch_volumes(svc: Service) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``(pod volumes, container volumeMounts)``: one ``emptyDir`` per scratch path."""
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    for i, path in enumerate(scratch_paths(svc)):
        name = f"{SCRATCH_PREFIX}{i}"
        volumes.append({"name": name, "emptyDir": {}})
        mounts.append({"name": name, "mountPath": path})
    return volumes, mounts
