"""The validating admission webhook for AddonStack, served by kopf's webhook server.

Optional (``ADDONSTACK_WEBHOOK=true``). The API server checks types, ranges, unknown ids and duplicates
itself (CRD schema and CEL); this webhook adds the catalog rules of :mod:`addonstack.plan.validate` (the
same function ``addonstack validate`` runs offline, so both print the same messages) and one rule that
needs other objects: two AddonStacks in one namespace must not create the same child object, or the
operator would fight itself and deleting one stack would delete the other's objects.

The webhook is registered with ``failurePolicy: Ignore``: when the operator is down, stacks can still be
edited and deleted (removing a finalizer is an update), and the operator's status reports what it skipped.
Updates that leave ``spec`` alone (finalizers, annotations, status) are always admitted.
"""

from __future__ import annotations

import logging
import random
from typing import Any

import kopf
from pydantic import ValidationError

from addonstack.catalog.loader import Catalog, format_validation_error, load_catalog
from addonstack.controller.cluster import AddonStackResource
from addonstack.plan.build import PlanError
from addonstack.plan.spec import AddonStackSpec
from addonstack.plan.validate import check_spec, requested_services, stack_services
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack

log = logging.getLogger("addonstack.admission")

WEBHOOK_ID = "addonstack-spec"
PLACEHOLDER = "admission-placeholder"  # stands in for every credential when computing child names


def child_names(cat: Catalog, spec: AddonStackSpec, name: str, namespace: str, defaults: StackDefaults) -> set[str]:
    """``Kind/name`` of every object the stack can create, whatever credentials its Secret holds later.

    Rendered by the same code the operator runs, with every credential of the stack's services filled
    in, so a service skipped today for a missing credential still counts (it appears once the key does).
    """
    creds = {
        f"{sid}.{e.key}": PLACEHOLDER
        for sid in stack_services(cat, requested_services(cat, spec))
        for e in cat.services[sid].env
        if e.credential
    }
    try:
        planned = plan_stack(cat, spec, name, namespace, defaults, random.Random(0), creds)
        plan, ctx = planned.plan, planned.context
    except PlanError:
        return set()  # the stack cannot be planned: it creates nothing
    objs, _ = render_kubernetes(plan, ctx)
    return {f"{o['kind']}/{o['metadata']['name']}" for o in objs}


def collisions(
    cat: Catalog,
    spec: AddonStackSpec,
    name: str,
    namespace: str,
    defaults: StackDefaults,
    others: list[dict[str, Any]],
) -> list[str]:
    """Problems for each other stack in the namespace that would create an object this one creates."""
    mine = child_names(cat, spec, name, namespace, defaults)
    problems: list[str] = []
    for other in sorted(others, key=lambda o: str(o["metadata"]["name"])):
        other_name = str(other["metadata"]["name"])
        if other_name == name:
            continue
        try:
            other_spec = AddonStackSpec.model_validate(other.get("spec") or {})
        except ValidationError:
            continue  # stalled with InvalidSpec: it creates nothing
        shared = sorted(mine & child_names(cat, other_spec, other_name, namespace, defaults))
        if shared:
            shown = ", ".join(shared[:8]) + (f" and {len(shared) - 8} more" if len(shared) > 8 else "")
            problems.append(
                f"metadata.namespace: AddonStack {other_name!r} in namespace {namespace!r} already creates "
                f"{shown}; child objects are named after their service, so two stacks in one namespace "
                f"cannot share them. Create this stack in another namespace, or add its services to "
                f"{other_name!r}"
            )
    return problems


async def _other_stacks(memo: Any, namespace: str) -> list[dict[str, Any]]:
    cluster = memo.state.cluster
    if cluster is None:
        return []
    out: list[dict[str, Any]] = []
    async for obj in cluster.client.list(AddonStackResource, namespace=namespace):
        out.append(obj.to_dict())
    return out


async def validate_stack(body: kopf.Body, memo: Any, **kwargs: Any) -> None:
    """kopf validating handler: raise :class:`kopf.AdmissionError` with every problem, or admit."""
    spec_raw = dict(body.get("spec") or {})
    old = kwargs.get("old")
    if kwargs.get("operation") == "UPDATE" and old is not None and dict(old.get("spec") or {}) == spec_raw:
        return  # finalizers, annotations and status of an admitted stack
    if body.metadata.get("deletionTimestamp"):
        return
    try:
        spec = AddonStackSpec.model_validate(spec_raw)
    except ValidationError as exc:
        # Field names and pydantic's short messages only: never the input values.
        raise kopf.AdmissionError(format_validation_error("spec", exc).replace("\n", " "), code=422) from None
    cat = load_catalog()
    problems = check_spec(cat, spec)
    name = body.metadata.name or ""
    namespace = body.metadata.namespace or ""
    try:
        others = await _other_stacks(memo, namespace)
    except Exception as exc:  # an admission answer, not a crash
        log.warning(
            "admission: cannot list AddonStacks in %s (%s); name collisions not checked", namespace, type(exc).__name__
        )
        others = []
    defaults: StackDefaults = memo.state.settings.defaults
    problems += collisions(cat, spec, name, namespace, defaults, others)
    if problems:
        log.info("admission: rejected AddonStack %s/%s (%d problems)", namespace, name, len(problems))
        raise kopf.AdmissionError("; ".join(problems), code=422)


def register(registry: kopf.OperatorRegistry, group: str, plural: str) -> None:
    kopf.on.validate(
        group,
        plural,
        id=WEBHOOK_ID,
        operations=["CREATE", "UPDATE"],
        ignore_failures=True,
        registry=registry,
    )(validate_stack)
