"""The Kubernetes render target: every catalog service's objects pass the official schemas (strict).

Stacks are built so that every deployable service is rendered at least once with the richest settings
(ingress with prefix stripping, a database, NetworkPolicies, GPU allowed, every required credential
given): services that conflict with one already taken go into the next stack.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from kubernetes_validate import validate

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.constants import LABEL_SERVICE, TRAEFIK_API_VERSION
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.figures import record

K8S_VERSION = "1.35.0"
WORKLOADS = {"Deployment", "StatefulSet"}


def _credentials(cat: Catalog, ids: list[str]) -> dict[str, str]:
    return {
        f"{sid}.{var.key}": f"user-{sid}-{var.key}".lower()
        for sid in ids
        for var in cat.services[sid].env
        if var.credential
    }


def _spec(cat: Catalog, ids: list[str], ingress_class: str, host: str | None = "apps.example.com") -> AddonStackSpec:
    # Build-only services deploy from an image the platform built (spec.prebuiltImages).
    prebuilt = {sid: f"registry.example.com/tenant/{sid}:1.0.0" for sid in ids if not cat.services[sid].image}
    ingress = {"className": ingress_class, "tlsSecretName": "apps-tls", **({"host": host} if host else {})}
    return AddonStackSpec.model_validate(
        {
            "services": ids,
            "prebuiltImages": prebuilt,
            "gpu": True,
            "allowExperimental": True,
            "ingress": ingress,
            "database": {"host": "postgres.platform.example", "adminSecretRef": {"name": "pg-admin"}},
        }
    )


def _render(
    cat: Catalog, ids: list[str], ingress_class: str, host: str | None = "apps.example.com"
) -> tuple[list[dict[str, Any]], list[str]]:
    planned = plan_stack(
        cat, _spec(cat, ids, ingress_class, host), "all", "tenant", StackDefaults(), make_rng(7), _credentials(cat, ids)
    )
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    return objs, plan.ids


def _stacks_covering_every_service(cat: Catalog) -> list[list[str]]:
    # Docker-socket services never run on Kubernetes (skipped with reason docker_socket).
    remaining = sorted(s.id for s in cat.services.values() if not s.platform_provided and not s.docker_socket)
    stacks: list[list[str]] = []
    while remaining:
        stack: list[str] = []
        for sid in remaining:
            clash = set(cat.services[sid].conflicts) | {
                other for other in stack if sid in cat.services[other].conflicts
            }
            if not clash & set(stack):
                stack.append(sid)
        stacks.append(stack)
        remaining = [sid for sid in remaining if sid not in stack]
    return stacks


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def test_every_service_renders_schema_valid_objects(catalog: Catalog) -> None:
    deployable = {s.id for s in catalog.services.values() if not s.platform_provided and not s.docker_socket}
    rendered: set[str] = set()
    checked = 0
    for n, ids in enumerate(_stacks_covering_every_service(catalog)):
        objs, planned = _render(catalog, ids, "nginx" if n % 2 == 0 else "traefik")
        for obj in objs:
            if obj["apiVersion"] == TRAEFIK_API_VERSION:
                continue  # not a Kubernetes kind: the API server test checks it against its CRD
            validate(obj, K8S_VERSION, strict=True)
            checked += 1
        rendered |= {o["metadata"]["labels"][LABEL_SERVICE] for o in objs if o["kind"] in WORKLOADS}
        assert set(ids) == set(planned) & set(ids), f"skipped: {sorted(set(ids) - set(planned))}"
    missing = deployable - rendered
    assert not missing, f"services that rendered no workload: {sorted(missing)}"
    record(f"kubernetes-validate (strict, {K8S_VERSION}): {checked} objects of {len(deployable)} services valid")


def test_traefik_prefix_stripping_uses_a_middleware(catalog: Catalog) -> None:
    # Without a host nothing is known about the public address: prefixes are stripped as before.
    objs, _ = _render(catalog, ["qdrant", "n8n"], "traefik", host=None)
    middlewares = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Middleware"}
    ingresses = [o for o in objs if o["kind"] == "Ingress"]
    assert ingresses and len(middlewares) == len(ingresses)
    for ing in ingresses:
        path = ing["spec"]["rules"][0]["http"]["paths"][0]["path"]
        ref = ing["metadata"]["annotations"]["traefik.ingress.kubernetes.io/router.middlewares"]
        namespace, _, rest = ref.partition("-")
        mw = middlewares[rest.removesuffix("@kubernetescrd")]
        assert namespace == "tenant" and ref.endswith("@kubernetescrd")
        assert mw["spec"] == {"stripPrefix": {"prefixes": [path]}}
        assert mw["metadata"]["labels"][LABEL_SERVICE] == ing["metadata"]["labels"][LABEL_SERVICE]


def test_nginx_prefix_stripping_uses_rewrite_target(catalog: Catalog) -> None:
    objs, _ = _render(catalog, ["qdrant"], "nginx", host=None)
    (ing,) = [o for o in objs if o["kind"] == "Ingress"]
    path = ing["spec"]["rules"][0]["http"]["paths"][0]
    assert path["path"].endswith("(/|$)(.*)") and path["pathType"] == "ImplementationSpecific"
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/rewrite-target"] == "/$2"
    assert not [o for o in objs if o["kind"] == "Middleware"]


def test_a_stack_name_too_long_for_child_names_is_a_plan_error(catalog: Catalog) -> None:
    from addonstack.plan.build import PlanError

    with pytest.raises(PlanError, match=r"metadata\.name: .* at most 40"):
        plan_stack(catalog, _spec(catalog, ["qdrant"], "nginx"), "s" * 41, "tenant", StackDefaults(), make_rng(1))


def test_gateway_env_config_map_defines_every_variable_the_skills_use() -> None:
    """``<stack>-gateway-env`` plus the Secret keys its annotation names cover every $VAR of the skill files."""
    cat = load_catalog()
    ids = ["n8n", "qdrant", "browserless"]
    objs, deployed = _render(cat, ids, "nginx")
    assert set(ids) <= set(deployed)
    gw = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "all-gateway-env")
    assert gw["data"]["N8N_HOST"] == "n8n" and gw["data"]["QDRANT_PORT"] == "6333"
    assert "BROWSERLESS_TOKEN" not in gw["data"]  # a secret stays in its Secret
    assert gw["metadata"]["annotations"]["addonstack.dev/secret-keys"] == "BROWSERLESS_TOKEN=browserless-env/TOKEN"
    secret = next(o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "browserless-env")
    assert secret["stringData"]["TOKEN"]
    skills = next(o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "all-skills")
    defined = set(gw["data"]) | {"BROWSERLESS_TOKEN"}
    for key, text in skills["data"].items():
        for var in re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text):
            assert var in defined, f"{key} uses ${var}"
