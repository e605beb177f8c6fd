"""Size presets, a stack's resource totals, and the namespace's ResourceQuota and LimitRange verdict.

Quotas refuse pods, not Deployments: a stack that does not fit its namespace would otherwise create every
object and then sit ``Progressing`` while its ReplicaSets collect ``FailedCreate`` events. So before it
writes anything the operator (and ``addonstack validate --namespace``) adds up what the rendered objects
will ask for and compares it with what the namespace allows. Pure: the objects, quotas and LimitRanges come
in as plain dicts; the operator and the CLI read them.

What counts is what the API server's admission counts: per pod the sum of its containers (or the largest
init container, when larger), after the LimitRange's defaults fill what a container leaves out; times the
replicas; plus object counts, claims and storage. ``used`` of a quota already holds what this stack runs,
so that part is taken out before the planned totals go in, and a resource this stack does not grow never
stalls it (a quota lowered under a running stack leaves it running).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Literal

from addonstack.plan.spec import StackResources
from addonstack.plan.validate import Problem
from addonstack.reasons import ConditionReason

Size = Literal["small", "medium", "large"]
# (factor on requests, factor on limits) of the catalog's figures: requests cpu 50m and memory = the
# entry's memoryMB, limit memory = twice memoryMB. small halves what is reserved but keeps the limits, so a
# service that fit at medium is not OOM-killed; large doubles both.
SIZE_FACTORS: dict[str, tuple[Decimal, Decimal]] = {
    "small": (Decimal("0.5"), Decimal(1)),
    "medium": (Decimal(1), Decimal(1)),
    "large": (Decimal(2), Decimal(2)),
}
CPU_REQUEST_MILLIS = 50


def sized(memory_mb: int, size: str | None) -> tuple[dict[str, str], dict[str, str]]:
    """(requests, limits) of a catalog entry at a size preset (medium when None)."""
    req, lim = SIZE_FACTORS[size or "medium"]
    cpu = max(10, int(CPU_REQUEST_MILLIS * req))
    return (
        {"cpu": f"{cpu}m", "memory": f"{max(16, int(memory_mb * req))}Mi"},
        {"memory": f"{max(32, int(memory_mb * 2 * lim))}Mi"},
    )


# ---- quantities --------------------------------------------------------------------------------

_SUFFIX = {
    "": Decimal(1), "m": Decimal("0.001"), "k": Decimal(10) ** 3, "M": Decimal(10) ** 6, "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12, "P": Decimal(10) ** 15, "E": Decimal(10) ** 18, "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40, "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}  # fmt: skip
_QUANTITY = re.compile(
    r"^\s*([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(?:[eE]([+-]?[0-9]+))?(Ki|Mi|Gi|Ti|Pi|Ei|m|k|M|G|T|P|E)?\s*$"
)


def quantity(value: Any) -> Decimal:
    """A Kubernetes quantity (``250m``, ``1.5Gi``, ``2``, ``1e3``) as a number; 0 for what is not one."""
    m = _QUANTITY.match(str(value))
    if m is None:
        return Decimal(0)
    number = Decimal(m.group(1)) * (Decimal(10) ** int(m.group(2)) if m.group(2) else 1)
    return number * _SUFFIX[m.group(3) or ""]


def show(resource: str, value: Decimal) -> str:
    """``1250m`` / ``2`` for CPU, ``3Gi`` / ``640Mi`` for bytes, a plain number for counts."""
    if resource.endswith("cpu"):
        millis = (value * 1000).to_integral_value()
        return f"{millis / 1000:f}".rstrip("0").rstrip(".") if millis % 1000 == 0 else f"{millis}m"
    if resource.endswith(("memory", "storage")):
        for unit in ("Gi", "Mi", "Ki"):
            if value >= _SUFFIX[unit] and value % _SUFFIX[unit] == 0:
                return f"{value / _SUFFIX[unit]:f}".split(".")[0] + unit
        if value >= _SUFFIX["Mi"]:
            return f"{(value / _SUFFIX['Mi']).quantize(Decimal('0.1'))}Mi"
    return f"{value.normalize():f}"


# ---- totals --------------------------------------------------------------------------------------

COMPUTE = ("requests.cpu", "requests.memory", "limits.cpu", "limits.memory")
# Quota resource names that count objects, by kind (count/<resource>.<group> also works for each).
_COUNTED = {
    "Secret": ("secrets", "count/secrets"),
    "ConfigMap": ("configmaps", "count/configmaps"),
    "Service": ("services", "count/services"),
    "PersistentVolumeClaim": ("persistentvolumeclaims", "count/persistentvolumeclaims"),
    "Deployment": ("count/deployments.apps",),
    "StatefulSet": ("count/statefulsets.apps",),
    "Job": ("count/jobs.batch",),
    "CronJob": ("count/cronjobs.batch",),
    "Ingress": ("count/ingresses.networking.k8s.io",),
    "NetworkPolicy": ("count/networkpolicies.networking.k8s.io",),
    "PodDisruptionBudget": ("count/poddisruptionbudgets.policy",),
}
_ALIASES = {"cpu": "requests.cpu", "memory": "requests.memory"}  # quota's short names for requests


@dataclass
class Totals:
    """What a set of objects asks of the namespace, under quota resource names (``requests.cpu``...)."""

    amounts: dict[str, Decimal] = field(default_factory=dict)
    # Compute resources some container leaves unset even after LimitRange defaults (a quota on them refuses it).
    unset: dict[str, list[str]] = field(default_factory=dict)  # resource -> "<kind>/<name>" of such workloads

    def add(self, resource: str, value: Decimal) -> None:
        self.amounts[resource] = self.amounts.get(resource, Decimal(0)) + value

    def get(self, resource: str) -> Decimal:
        return self.amounts.get(_ALIASES.get(resource, resource), Decimal(0))


@dataclass(frozen=True)
class ContainerLimits:
    """The LimitRanges' ``type: Container`` defaults (limits, requests) and bounds, merged."""

    default: Mapping[str, Decimal] = field(default_factory=dict)
    default_request: Mapping[str, Decimal] = field(default_factory=dict)


def _container_defaults(limit_ranges: Iterable[Mapping[str, Any]]) -> ContainerLimits:
    default: dict[str, Decimal] = {}
    default_request: dict[str, Decimal] = {}
    for _, item in _items(limit_ranges, "Container"):
        for k, v in (item.get("default") or {}).items():
            default.setdefault(k, quantity(v))
        for k, v in (item.get("defaultRequest") or {}).items():
            default_request.setdefault(k, quantity(v))
    return ContainerLimits(default, default_request)


def _items(limit_ranges: Iterable[Mapping[str, Any]], type_: str) -> Iterator[tuple[str, Mapping[str, Any]]]:
    for lr in limit_ranges:
        for item in (lr.get("spec") or {}).get("limits") or []:
            if item.get("type") == type_:
                yield str((lr.get("metadata") or {}).get("name", "")), item


def container_resources(c: Mapping[str, Any], lim: ContainerLimits) -> tuple[dict[str, Decimal], dict[str, Decimal]]:
    """(requests, limits) of a container as admission sees them: LimitRange defaults for what is unset, and a
    request that is still unset takes the limit (the API server's own defaulting)."""
    res = c.get("resources") or {}
    limits = {k: quantity(v) for k, v in (res.get("limits") or {}).items()}
    requests = {k: quantity(v) for k, v in (res.get("requests") or {}).items()}
    for k, v in lim.default.items():
        limits.setdefault(k, v)
    for k in ("cpu", "memory"):
        if k not in requests and k in lim.default_request:
            requests[k] = lim.default_request[k]
        elif k not in requests and k in limits:
            requests[k] = limits[k]
    return requests, limits


def pod_templates(obj: Mapping[str, Any]) -> Iterator[tuple[Mapping[str, Any], int]]:
    """(pod spec, how many pods) of a workload object."""
    spec = obj.get("spec") or {}
    kind = obj.get("kind")
    if kind in ("Deployment", "StatefulSet", "ReplicaSet"):
        replicas = spec.get("replicas")
        yield (spec.get("template") or {}).get("spec") or {}, 1 if replicas is None else int(replicas)
    elif kind == "Job":
        yield (spec.get("template") or {}).get("spec") or {}, int(spec.get("parallelism") or 1)
    elif kind == "Pod":
        yield spec, 1


def totals(objs: Iterable[Mapping[str, Any]], limit_ranges: Iterable[Mapping[str, Any]] = ()) -> Totals:
    """What ``objs`` ask of the namespace once created (pods at their replicas, claims, object counts)."""
    lim = _container_defaults(list(limit_ranges))
    out = Totals()
    for obj in objs:
        kind = str(obj.get("kind"))
        for name in _COUNTED.get(kind, ()):
            out.add(name, Decimal(1))
        for _, storage, n in claims(obj):
            out.add("requests.storage", storage * n)
            if kind != "PersistentVolumeClaim":  # a claim object is counted above; these come from templates
                out.add("persistentvolumeclaims", Decimal(n))
                out.add("count/persistentvolumeclaims", Decimal(n))
        for pod, count in pod_templates(obj):
            out.add("pods", Decimal(count))
            for resource, value in _pod_amounts(
                pod, lim, out.unset, f"{kind}/{(obj.get('metadata') or {}).get('name')}"
            ).items():
                out.add(resource, value * count)
    return out


def claims(obj: Mapping[str, Any]) -> Iterator[tuple[str, Decimal, int]]:
    """(name, storage requested, how many) of a claim object or a StatefulSet's claim templates."""

    def storage(claim: Mapping[str, Any]) -> Decimal:
        return quantity((((claim.get("spec") or {}).get("resources") or {}).get("requests") or {}).get("storage", 0))

    if obj.get("kind") == "PersistentVolumeClaim":
        yield _name(obj), storage(obj), 1
    elif obj.get("kind") == "StatefulSet":
        replicas = (obj.get("spec") or {}).get("replicas")
        for claim in (obj.get("spec") or {}).get("volumeClaimTemplates") or []:
            yield f"{_name(claim)}-{_name(obj)}", storage(claim), 1 if replicas is None else int(replicas)


def _pod_amounts(
    pod: Mapping[str, Any], lim: ContainerLimits, unset: dict[str, list[str]], where: str
) -> dict[str, Decimal]:
    """One pod's requests and limits: the sum over its containers, or its largest init container if larger."""
    amounts: dict[str, Decimal] = {}
    for resource in COMPUTE:
        kind, name = resource.split(".")
        app: list[Decimal] = []
        init: list[Decimal] = []
        for key, bucket in (("containers", app), ("initContainers", init)):
            for c in pod.get(key) or []:
                requests, limits = container_resources(c, lim)
                values = requests if kind == "requests" else limits
                if name not in values:
                    if where not in unset.setdefault(resource, []):
                        unset[resource].append(where)
                    continue
                bucket.append(values[name])
        amounts[resource] = max(sum(app, Decimal(0)), max(init, default=Decimal(0)))
    return amounts


# ---- the verdict ---------------------------------------------------------------------------------

# Quota scopes our pods fall under (they always request CPU and memory, and no pod has a deadline); a quota
# with any other scope or a scopeSelector does not count them.
_OUR_SCOPES = {"NotBestEffort", "NotTerminating"}
_FIX_SIZE = "choose a smaller spec.size, lower overrides.<id>.replicas, or remove services"


def _counts_our_pods(quota: Mapping[str, Any]) -> bool:
    spec = quota.get("spec") or {}
    return not spec.get("scopeSelector") and set(spec.get("scopes") or []) <= _OUR_SCOPES


def _name(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


def quota_problems(
    planned: Iterable[Mapping[str, Any]],
    live: Iterable[Mapping[str, Any]],
    quotas: Iterable[Mapping[str, Any]],
    limit_ranges: Iterable[Mapping[str, Any]],
    want: Totals | None = None,
) -> list[Problem]:
    """Why the namespace would refuse objects of ``planned`` (the stack's rendered objects), given what the
    stack already runs (``live``), the namespace's ResourceQuotas (with ``status.used``) and LimitRanges.
    ``want``: ``totals(planned, limit_ranges)`` when the caller has it already. Totals are worked out only when a
    quota counts our pods (most namespaces have none: a pass then sums nothing twice)."""
    planned, lrs = list(planned), list(limit_ranges)
    problems = limit_range_problems(planned, lrs)
    counting = [quota for quota in quotas if _counts_our_pods(quota)]
    if not counting:
        return problems
    want = want if want is not None else totals(planned, lrs)
    have = totals(live, lrs)
    for quota in counting:
        hard = (quota.get("spec") or {}).get("hard") or {}
        used = (quota.get("status") or {}).get("used") or {}
        for resource, limit in sorted(hard.items()):
            key = _ALIASES.get(resource, resource)
            if key in COMPUTE and want.unset.get(key):
                problems.append(
                    Problem(ConditionReason.QUOTA_EXCEEDED, _unset_message(_name(quota), resource, want.unset[key]))
                )
                continue
            need, ours = want.get(key), have.get(key)
            if key not in want.amounts or need <= ours:
                continue  # nothing of that resource, or the stack does not grow it
            others = max(Decimal(0), quantity(used.get(resource, 0)) - ours)
            if others + need > quantity(limit):
                problems.append(Problem(ConditionReason.QUOTA_EXCEEDED, (
                    f"ResourceQuota {_name(quota)}: {resource} would reach {show(key, others + need)} "
                    f"({show(key, need)} for this stack, {show(key, others)} used by others) but the quota allows "
                    f"{show(key, quantity(limit))}; raise the quota, or {_FIX_SIZE}"
                )))  # fmt: skip
    return problems


def _unset_message(quota: str, resource: str, where: list[str]) -> str:
    kind, name = _ALIASES.get(resource, resource).split(".")
    field_name = "default" if kind == "limits" else "defaultRequest"
    more = f" and {len(where) - 3} more" if len(where) > 3 else ""
    return (
        f"ResourceQuota {quota}: it sets {resource}, so every container must declare a {name} "
        f"{'limit' if kind == 'limits' else 'request'}; {', '.join(where[:3])}{more} do not and no LimitRange "
        f"gives a {field_name}.{name}; add a LimitRange with {field_name}.{name} to the namespace, set "
        f"overrides.<id>.resources.{kind}.{name}, or remove {resource} from the quota"
    )


def limit_range_problems(planned: Iterable[Mapping[str, Any]], limit_ranges: list[Mapping[str, Any]]) -> list[Problem]:
    """Containers, pods and claims of ``planned`` that a LimitRange's min, max or ratio refuses."""
    lim = _container_defaults(limit_ranges)
    problems: list[str] = []
    for obj in planned:
        where = f"{obj.get('kind')}/{_name(obj)}"
        for pod, _ in pod_templates(obj):
            for c in [*(pod.get("initContainers") or []), *(pod.get("containers") or [])]:
                requests, limits = container_resources(c, lim)
                for lr, item in _items(limit_ranges, "Container"):
                    problems += _bounds(
                        f"LimitRange {lr}: container {c.get('name')} of {where}", item, requests, limits
                    )
        for claim, storage, _ in claims(obj):
            for lr, item in _items(limit_ranges, "PersistentVolumeClaim"):
                size = {"storage": storage}
                problems += _bounds(f"LimitRange {lr}: claim {claim} of {where}", item, size, size)
    return [Problem(ConditionReason.LIMIT_RANGE_VIOLATED, p) for p in problems]


def _bounds(
    who: str, item: Mapping[str, Any], requests: Mapping[str, Decimal], limits: Mapping[str, Decimal]
) -> list[str]:
    out: list[str] = []
    for res, top in (item.get("max") or {}).items():
        value = limits.get(res, requests.get(res))
        if value is not None and value > quantity(top):
            out.append(f"{who} asks for {res} {show(res, value)}, at most {top} is allowed; raise the LimitRange's "
                       f"max.{res}, set overrides.<id>.resources, or choose a smaller spec.size")  # fmt: skip
    for res, bottom in (item.get("min") or {}).items():
        value = requests.get(res)
        if value is not None and value < quantity(bottom):
            fix = f"overrides.<id>.resources.requests.{res}, or choose a larger spec.size"
            out.append(f"{who} asks for {res} {show(res, value)}, at least {bottom} is required; lower the "
                       f"LimitRange's min.{res}, set {fix}")  # fmt: skip
    for res, ratio in (item.get("maxLimitRequestRatio") or {}).items():
        req, top = requests.get(res), limits.get(res)
        if req and top is not None and top / req > quantity(ratio):
            out.append(f"{who} has a {res} limit {top / req:.1f} times its request, at most {ratio} is allowed; set "
                       f"overrides.<id>.resources so the ratio fits, or raise maxLimitRequestRatio.{res}")  # fmt: skip
    return out


def summary(t: Totals) -> StackResources:
    """``status.resources``: the totals a person compares with ``kubectl describe quota``."""
    pick = {k: show(k, t.get(k)) for k in COMPUTE if t.get(k) > 0}
    storage = t.get("requests.storage")
    return StackResources(
        requests={k.split(".")[1]: v for k, v in pick.items() if k.startswith("requests.")},
        limits={k.split(".")[1]: v for k, v in pick.items() if k.startswith("limits.")},
        pods=int(t.get("pods")),
        storage=show("requests.storage", storage) if storage > 0 else None,
    )
