"""Public URLs: every routed web service is told the URL its Ingress (or the platform's proxy) serves.

The expected URL is read back from the rendered Ingress (scheme from its tls block, host from its rule,
path from its path), never recomputed the way the planner does, and compared with the values the
container really gets (resolved from the rendered ConfigMap and Secret), over the whole catalog.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from addonstack.api import generate_addon_stack
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.catalog.model import Service
from addonstack.constants import ANNOTATION_CERT_MANAGER_CLUSTER_ISSUER, ANNOTATION_CERT_MANAGER_ISSUER
from addonstack.plan.secrets import env_file_key, make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render import envfile, yamlio
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.proxy import caddy_snippet, traefik_labels
from addonstack.render.stack import StackDefaults, plan_stack
from tests.figures import record

HOST = "apps.example.com"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _routed(svc: Service) -> bool:
    return any(p.protocol == "http" and p.exposed for p in svc.ports)


def _stacks(cat: Catalog) -> list[list[str]]:
    """Every Kubernetes-deployable routed entry, in as few stacks as declared conflicts allow."""
    remaining = sorted(s.id for s in cat.addons() if _routed(s) and not s.docker_socket)
    stacks: list[list[str]] = []
    while remaining:
        stack: list[str] = []
        for sid in remaining:
            if not any(sid in cat.services[o].conflicts or o in cat.services[sid].conflicts for o in stack):
                stack.append(sid)
        stacks.append(stack)
        remaining = [s for s in remaining if s not in stack]
    return stacks


def _render(cat: Catalog, ids: list[str], ingress: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    creds = {f"{sid}.{v.key}": "user-value" for sid in ids for v in cat.services[sid].env if v.credential}
    spec = AddonStackSpec.model_validate(
        {
            "services": ids,
            "allowExperimental": True,
            "prebuiltImages": {sid: f"registry.example.com/{sid}:1.0" for sid in ids if cat.services[sid].needs_build},
            "ingress": ingress,
            "database": {"host": "pg.example", "adminSecretRef": {"name": "pg-admin"}},
            "redis": {"host": "redis.example"},
        }
    )
    planned = plan_stack(cat, spec, "web", "tenant", StackDefaults(), make_rng(3), creds)
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    return plan, objs


def _container_env(objs: list[dict[str, Any]], sid: str) -> dict[str, str]:
    """The values the service's container gets, resolved from the rendered ConfigMaps and Secrets."""
    stores = {
        (o["kind"], o["metadata"]["name"]): o.get("data") or o.get("stringData") or {}
        for o in objs
        if o["kind"] in ("ConfigMap", "Secret")
    }
    (workload,) = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == sid]
    out: dict[str, str] = {}
    for entry in workload["spec"]["template"]["spec"]["containers"][0].get("env", []):
        if "value" in entry:
            out[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"]
        kind, key = ("ConfigMap", "configMapKeyRef") if "configMapKeyRef" in ref else ("Secret", "secretKeyRef")
        out[entry["name"]] = stores[(kind, ref[key]["name"])][ref[key]["key"]]
    return out


def _served_url(ing: dict[str, Any]) -> tuple[str, str, str]:
    """(scheme, host, path) an Ingress serves its backend at; path "" for the whole host."""
    rule = ing["spec"]["rules"][0]
    host = rule["host"]
    tls_hosts = {h for block in ing["spec"].get("tls", []) for h in block["hosts"]}
    entry = rule["http"]["paths"][0]
    assert entry["pathType"] == "Prefix", f"{ing['metadata']['name']}: a told prefix must not be rewritten"
    assert "nginx.ingress.kubernetes.io/rewrite-target" not in (ing["metadata"].get("annotations") or {})
    return ("https" if host in tls_hosts else "http"), host, entry["path"].rstrip("/")


def _fill(template: str, scheme: str, host: str, path: str) -> str:
    values = {
        "PUBLIC_URL": f"{scheme}://{host}{path}",
        "PUBLIC_ORIGIN": f"{scheme}://{host}",
        "PUBLIC_HOST": host,
        "PUBLIC_PATH": path,
        "PUBLIC_SCHEME": scheme,
    }
    return re.sub(r"\$\{(\w+)\}", lambda m: values[m.group(1)], template)


@pytest.mark.parametrize(
    "ingress",
    [
        {"className": "nginx", "host": HOST, "clusterIssuer": "letsencrypt"},
        {"className": "traefik", "host": HOST, "tlsSecretName": "apps-tls", "pathPrefix": "/tools"},
        {"className": "nginx", "host": HOST, "issuer": "local-ca", "perServiceHosts": True},
    ],
    ids=["path-routes", "prefix-and-secret", "per-service-hosts"],
)
def test_every_routed_service_is_told_the_url_its_ingress_serves(catalog: Catalog, ingress: dict[str, Any]) -> None:
    checked_vars = told = own_host = 0
    for ids in _stacks(catalog):
        plan, objs = _render(catalog, ids, ingress)
        ingresses = {o["metadata"]["name"]: o for o in objs if o["kind"] == "Ingress"}
        all_hosts = {o["spec"]["rules"][0]["host"] for o in ingresses.values()}
        for ing in ingresses.values():
            (tls,) = ing["spec"]["tls"]
            assert set(tls["hosts"]) == all_hosts, "one tls block covering every host of the stack"
            assert tls["secretName"] == ingress.get("tlsSecretName", "web-tls")
            annotations = ing["metadata"].get("annotations") or {}
            if "clusterIssuer" in ingress:
                assert annotations[ANNOTATION_CERT_MANAGER_CLUSTER_ISSUER] == ingress["clusterIssuer"]
            if "issuer" in ingress:
                assert annotations[ANNOTATION_CERT_MANAGER_ISSUER] == ingress["issuer"]
            assert not [o for o in objs if o["kind"] == "Middleware"], "no prefix is stripped behind a known host"
        for p in plan.services:
            if not _routed(p.service):
                continue
            scheme, host, path = _served_url(ingresses[p.id])
            assert scheme == "https"
            if host != HOST:
                own_host += 1
                assert host == f"{p.id}.{HOST}" and path == ""
            else:
                assert p.service.public_url is not None and p.service.public_url.sub_path
                assert path.startswith(ingress.get("pathPrefix", "") + "/")
            if p.service.public_url is None or not p.service.public_url.env:
                continue
            told += 1
            env = _container_env(objs, p.id)
            for var in p.service.public_url.env:
                if var.of is not None:
                    continue  # another service's address: test_public_url_companions checks it against that Ingress
                assert env[var.key] == _fill(var.value, scheme, host, path), f"{p.id}.{var.key}"
                checked_vars += 1
    assert told > 0 and checked_vars >= told
    record(
        f"public URLs ({ingress.get('className')}, {len(ingress)} settings): {told} services told, "
        f"{checked_vars} variables equal their Ingress URL, {own_host} on their own host"
    )


def test_own_host_services_are_warned_with_the_dns_name(catalog: Catalog) -> None:
    plan, _ = _render(catalog, ["qdrant"], {"className": "nginx", "host": HOST})
    assert catalog.services["qdrant"].public_url is None
    assert any("qdrant.apps.example.com" in w and "DNS" in w for w in plan.warnings), plan.warnings
    assert plan.public["qdrant"].url == "http://qdrant.apps.example.com"


def test_wildcard_host_routes_every_service_on_its_own_host(catalog: Catalog) -> None:
    sub = next(
        s.id
        for s in catalog.addons()
        if s.public_url and s.public_url.sub_path and not s.needs_build and not s.docker_socket
    )
    plan, objs = _render(catalog, [sub], {"className": "nginx", "host": f"*.{HOST}", "tlsSecretName": "wild"})
    (ing,) = [o for o in objs if o["kind"] == "Ingress"]
    assert _served_url(ing) == ("https", f"{sub}.{HOST}", "")
    assert plan.public[sub].url == f"https://{sub}.{HOST}"


def test_without_a_host_the_catalog_defaults_stay(catalog: Catalog) -> None:
    sid = "n8n"
    svc = catalog.services[sid]
    assert svc.public_url is not None and svc.public_url.env
    plan, objs = _render(catalog, [sid], {"className": "nginx"})
    env = _container_env(objs, sid)
    for var in svc.public_url.env:
        default = svc.env_var(var.key)
        assert default is not None and env.get(var.key, "") == (default.default or "")
    assert plan.public == {} and all(r.strip_prefix for r in plan.routes if r.protocol == "http")


def test_library_public_base_url_tells_services_and_routes_the_proxy(catalog: Catalog) -> None:
    sub = next(
        s
        for s in catalog.addons()
        if s.public_url
        and s.public_url.sub_path
        and s.public_url.env
        and not s.needs_build
        and not s.docker_socket
        and s.maturity != "experimental"
    )
    own = next(
        s
        for s in catalog.addons()
        if s.public_url
        and not s.public_url.sub_path
        and s.public_url.env
        and not s.needs_build
        and s.maturity != "experimental"
        and not s.docker_socket
        and not any(e.required for e in s.env)
        and not s.conflicts
    )
    base = "https://box.example.com"
    r = generate_addon_stack({"instanceId": "t1", "services": [sub.id, own.id], "publicBaseUrl": base}, seed=1)
    env = {k: v for section in envfile.parse(r.env_file).values.values() for k, v in section.items()}
    routes = {x.service_id: x for x in r.proxy_routes if x.protocol == "http"}
    sub_path = routes[sub.id].path
    assert sub_path and not routes[sub.id].strip_prefix and routes[sub.id].host is None
    for var in sub.public_url.env:  # type: ignore[union-attr]
        assert env[env_file_key(sub.id, var.key)] == _fill(var.value, "https", "box.example.com", sub_path)
    assert routes[own.id].host == f"{own.id}.box.example.com"
    for var in own.public_url.env:  # type: ignore[union-attr]
        assert env[env_file_key(own.id, var.key)] == _fill(var.value, "https", f"{own.id}.box.example.com", "")
    assert any(f"{own.id}.box.example.com" in w for w in r.warnings)
    # The proxy helpers follow the same routes: pass-through path for one, host matcher for the other.
    snippet = caddy_snippet(r.proxy_routes)
    assert f"handle {sub_path}/*" in snippet and f"host {own.id}.box.example.com" in snippet
    assert traefik_labels(routes[own.id])[f"traefik.http.routers.addonstack-{own.id}.rule"] == (
        f"Host(`{own.id}.box.example.com`)"
    )
    assert yamlio.load(r.compose_override)["services"][own.id]


def test_public_base_url_is_validated() -> None:
    with pytest.raises(ValueError, match="publicBaseUrl"):
        generate_addon_stack({"instanceId": "t1", "services": ["n8n"], "publicBaseUrl": "box.example.com"})


def test_every_routed_service_is_told_the_url_its_proxy_route_serves(catalog: Catalog) -> None:
    """The Compose side over the whole catalog: the URL each proxy route serves (its host, or the base
    URL plus its path) is what the env file tells the service."""
    told = 0
    for ids in _stacks(catalog):
        creds = {sid: {v.key: "user-value" for v in catalog.services[sid].env if v.required} for sid in ids}
        r = generate_addon_stack(
            {
                "instanceId": "t1",
                "services": ids,
                "publicBaseUrl": "https://box.example.com/apps",
                "allowExperimental": True,
                "gpu": True,
                "credentials": {k: v for k, v in creds.items() if v},
            },
            seed=2,
        )
        env = {k: v for section in envfile.parse(r.env_file).values.values() for k, v in section.items()}
        for route in r.proxy_routes:
            svc = catalog.services[route.service_id]
            if route.protocol != "http" or svc.public_url is None or not svc.public_url.env:
                continue
            if route.host is not None:
                host, path = route.host, ""
                assert route.path == "/"
            else:
                host, path = "box.example.com", route.path or ""
                assert path.startswith("/apps/") and not route.strip_prefix
            for var in svc.public_url.env:
                if var.of is not None:
                    continue  # another service's address: test_public_url_companions checks it
                assert env[env_file_key(svc.id, var.key)] == _fill(var.value, "https", host, path), (svc.id, var.key)
            told += 1
    assert told > 0
    record(f"publicBaseUrl: {told} services told the URL their proxy route serves")
