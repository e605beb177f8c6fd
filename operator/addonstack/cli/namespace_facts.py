"""What ``addonstack validate --namespace`` reads from the cluster: the namespace's Pod Security label, its
ResourceQuotas and LimitRanges, and what the stack already runs there.

validate is an offline command that asks a cluster only when told a namespace, and then only reads: each
read is best effort (no kubeconfig, no cluster, no permission gives a warning saying what was not checked
and why, never a failure), and lightkube is imported here lazily, so the library and the CLI still work
without the operator extras. The verdict is not made here: these are the same inputs the operator's
``observe()`` hands its decision, and validate runs the same pure comparison (plan/resources.py) on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from addonstack.cli.output import warn
from addonstack.constants import LABEL_STACK

QUOTA_FIX = "the namespace's quota is checked by the operator before it creates anything"
LABEL_FIX = "pass --pod-security LEVEL"
# Kinds of the stack's children that a ResourceQuota counts (pods, claims, storage, object counts); the
# operator lists these among its children too (controller/cluster.py CHILD_KINDS).
COUNTED_KINDS: tuple[tuple[str, str], ...] = (
    ("v1", "Secret"),
    ("v1", "ConfigMap"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("apps/v1", "Deployment"),
    ("apps/v1", "StatefulSet"),
    ("batch/v1", "Job"),
    ("networking.k8s.io/v1", "Ingress"),
    ("networking.k8s.io/v1", "NetworkPolicy"),
    ("policy/v1", "PodDisruptionBudget"),
)


@dataclass
class NamespaceFacts:
    """What could be read; ``quotas`` None means the quota check was not made (a warning said why)."""

    level: str | None = None
    quotas: list[dict[str, Any]] | None = None
    limit_ranges: list[dict[str, Any]] = field(default_factory=list)
    live: list[dict[str, Any]] = field(default_factory=list)


def counted_part(obj: dict[str, Any]) -> dict[str, Any]:
    """The part of a live object the quota comparison reads (kind, name, spec): a Secret's data never leaves
    the read."""
    meta = obj.get("metadata") or {}
    return {"kind": obj.get("kind"), "metadata": {"name": meta.get("name")}, "spec": obj.get("spec") or {}}


def _why(exc: BaseException, resource: str, name: str | None = None) -> str:
    from addonstack.cli.kube_errors import explain

    return explain(exc, resource=resource, name=name) or f"{type(exc).__name__}: {exc}"


def read_namespace(namespace: str, stack: str, *, label: bool) -> NamespaceFacts:
    """The namespace's facts (its Pod Security label only when ``label``); what cannot be read is warned about
    once and left out. ``stack`` names the AddonStack whose running objects are already in the quota's use."""
    facts = NamespaceFacts()
    # (what, the fix) of each read not made yet: a failure names those left
    pending = [("Pod Security label", LABEL_FIX)] if label else []
    pending.append(("ResourceQuotas and LimitRanges", QUOTA_FIX))

    def unread(why: str) -> None:
        what, fixes = ", ".join(p[0] for p in pending), "; ".join(p[1] for p in pending)
        warn(f"--namespace {namespace}: {what} not read ({why}); {fixes}")

    try:
        from lightkube import Client
        from lightkube.core.exceptions import ApiError
        from lightkube.resources.core_v1 import LimitRange, ResourceQuota
    except ImportError:
        unread("the operator extras are not installed: pip install 'addonstack[operator]'")
        return facts
    try:
        client = Client()
    except Exception as exc:  # no usable kubeconfig: nothing is read
        unread(_why(exc, "namespaces", namespace))
        return facts
    try:
        if label:
            facts.level = _level(client, namespace, ApiError)
            pending.pop(0)
        try:
            limit_ranges = [_plain(o, "LimitRange") for o in client.list(LimitRange, namespace=namespace)]
            facts.quotas = [_plain(o, "ResourceQuota") for o in client.list(ResourceQuota, namespace=namespace)]
        except ApiError as exc:  # not allowed to list them: not checked
            unread(_why(exc, "resourcequotas and limitranges"))
            return facts
        facts.limit_ranges = limit_ranges
        pending.clear()
        facts.live = _children(client, namespace, stack, ApiError)
    except Exception as exc:  # the API server does not answer: what is left stays unchecked
        if pending:
            facts.quotas = None
            unread(_why(exc, "namespaces", namespace))
        else:
            warn(f"--namespace {namespace}: what {stack} already runs there not read ({_why(exc, 'namespaces')}); "
                 "it is counted as new")  # fmt: skip
    finally:
        client.close()
    return facts


def _plain(obj: Any, kind: str) -> dict[str, Any]:
    d: dict[str, Any] = obj.to_dict()
    d.setdefault("kind", kind)
    return d


def _level(client: Any, namespace: str, api_error: type[Exception]) -> str | None:
    from lightkube.resources.core_v1 import Namespace

    from addonstack.plan.resolve import enforced_level

    try:
        obj = client.get(Namespace, namespace)
    except api_error as exc:  # not found, or not allowed to read namespaces: the label stays unknown
        why = _why(exc, "namespaces", namespace)
        warn(f"--namespace {namespace}: Pod Security label not read ({why}); {LABEL_FIX}")
        return None
    return enforced_level(obj.metadata.labels if obj.metadata else None)


def _children(client: Any, namespace: str, stack: str, api_error: type[Exception]) -> list[dict[str, Any]]:
    """What the stack already runs in the namespace (the quota's ``used`` holds it; the operator takes it out
    before it adds the plan). Unreadable (RBAC): counted as if the stack ran nothing, with a warning."""
    from lightkube.core.resource_registry import resource_registry

    found: list[dict[str, Any]] = []
    for api_version, kind in COUNTED_KINDS:
        model = resource_registry.load(api_version, kind)
        try:
            found += [counted_part({**o.to_dict(), "kind": kind}) for o in
                      client.list(model, namespace=namespace, labels={LABEL_STACK: stack})]  # fmt: skip
        except api_error as exc:
            warn(f"--namespace {namespace}: {stack}'s running {kind}s not read ({_why(exc, kind.lower() + 's')}); "
                 "they are counted as new")  # fmt: skip
    return found
