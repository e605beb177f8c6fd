"""Health checks of apps that serve everything under the base path they are told (``basePathVar``).

Prometheus and Alertmanager register ``/-/healthy`` on their prefixed router: routed under ``/prometheus``
with the prefix passed through, ``/-/healthy`` itself answers 404 and a probe on it would restart the pod
forever. The prefix each probe must carry is read from the rendered Ingress (or the library's proxy route)
and, for Compose, from the health check as Compose's own loader interpolates it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from addonstack.api import generate_addon_stack
from addonstack.catalog.lint import lint
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.catalog.model import HealthCheck, Service
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.composeview import compose_view
from tests.unit.test_public_urls import HOST, _container_env, _render, _served_url


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _moving(cat: Catalog) -> list[Service]:
    """Entries whose health endpoint moves under their base path."""
    return [
        s
        for s in sorted(cat.addons(), key=lambda s: s.id)
        if s.health_check and s.health_check.http and s.health_check.http.base_path_var
    ]


def _probes(objs: list[dict[str, Any]], sid: str) -> dict[str, str]:
    (w,) = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == sid]
    container = w["spec"]["template"]["spec"]["containers"][0]
    return {k: container[f"{k}Probe"]["httpGet"]["path"] for k in ("readiness", "liveness", "startup")}


def test_prometheus_and_alertmanager_declare_it(catalog: Catalog) -> None:
    assert {"prometheus", "alertmanager"} <= {s.id for s in _moving(catalog)}
    for s in _moving(catalog):
        assert s.public_url is not None and s.public_url.sub_path, s.id


@pytest.mark.parametrize(
    "ingress",
    [
        {"className": "nginx", "host": HOST, "tlsSecretName": "t"},
        {"className": "nginx", "host": HOST, "pathPrefix": "/tools"},
        {"className": "nginx", "host": HOST, "perServiceHosts": True},
        {"className": "nginx"},
    ],
    ids=["path-routes", "prefix", "own-hosts", "no-host"],
)
def test_every_probe_asks_the_path_the_ingress_passes_through(catalog: Catalog, ingress: dict[str, Any]) -> None:
    moving = _moving(catalog)
    _, objs = _render(catalog, [s.id for s in moving], ingress)
    for svc in moving:
        hc = svc.health_check
        assert hc is not None and hc.http is not None and hc.http.base_path_var is not None
        if "host" in ingress:
            (ing,) = [o for o in objs if o["kind"] == "Ingress" and o["metadata"]["name"] == svc.id]
            _, _, served_path = _served_url(ing)
        else:
            served_path = ""  # no public address: the proxy strips the prefix, the app serves at its root
        assert set(_probes(objs, svc.id).values()) == {served_path + hc.http.path}, svc.id
        # ... and it is the base path the app itself is told.
        assert _container_env(objs, svc.id)[hc.http.base_path_var] == served_path, svc.id


def test_apps_that_keep_health_at_the_root_are_not_moved(catalog: Catalog) -> None:
    """Grafana strips its sub path before routing (Macaron's URL prefix), so /api/health answers at the root."""
    grafana = catalog.services["grafana"]
    assert grafana.public_url is not None and grafana.public_url.sub_path
    assert grafana.health_check is not None and grafana.health_check.http is not None
    assert grafana.health_check.http.base_path_var is None
    _, objs = _render(catalog, ["grafana"], {"className": "nginx", "host": HOST})
    (ing,) = [o for o in objs if o["kind"] == "Ingress" and o["metadata"]["name"] == "grafana"]
    assert _served_url(ing)[2] == "/grafana"
    assert set(_probes(objs, "grafana").values()) == {grafana.health_check.http.path}


def test_compose_health_checks_follow_the_proxy_route(catalog: Catalog, composecheck: Path, tmp_path: Path) -> None:
    ids = [s.id for s in _moving(catalog)]
    cases: list[tuple[str, dict[str, Any]]] = [
        ("base", {"publicBaseUrl": "https://box.example.com/apps"}),
        ("none", {}),
        ("override", {"publicBaseUrl": "https://box.example.com", "envOverrides": {"prometheus": {}}}),
    ]
    override = catalog.services["prometheus"].health_check
    assert override is not None and override.http is not None and override.http.base_path_var
    cases[2][1]["envOverrides"]["prometheus"][override.http.base_path_var] = "/metrics-ui"
    for name, extra in cases:
        result = generate_addon_stack({"instanceId": "t1", "services": ids, **extra}, seed=1)
        (tmp_path / name).mkdir()
        view = compose_view(composecheck, result, tmp_path / name, {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})
        routes = {r.service_id: r for r in result.proxy_routes if r.protocol == "http"}
        for svc in _moving(catalog):
            hc = svc.health_check
            assert hc is not None and hc.http is not None
            prefix = routes[svc.id].path if "publicBaseUrl" in extra else ""
            if name == "override" and svc.id == "prometheus":
                prefix = "/metrics-ui"
            want = f"http://localhost:{hc.http.port}{prefix}{hc.http.path}"
            assert view["services"][svc.id]["healthcheck"][-1] == want, (name, svc.id)


def test_kubernetes_probe_follows_an_env_override(catalog: Catalog) -> None:
    spec = AddonStackSpec.model_validate(
        {
            "services": ["prometheus"],
            "ingress": {"className": "nginx", "host": HOST},
            "overrides": {"prometheus": {"env": {"PROMETHEUS_ROUTE_PREFIX": "/metrics-ui/"}}},
        }
    )
    planned = plan_stack(catalog, spec, "web", "tenant", StackDefaults(), make_rng(3), {})
    objs, _ = render_kubernetes(planned.plan, planned.context)
    assert set(_probes(objs, "prometheus").values()) == {"/metrics-ui/-/healthy"}


def test_the_gateway_reaches_prometheus_under_its_prefix(catalog: Catalog) -> None:
    _, objs = _render(catalog, ["prometheus"], {"className": "nginx", "host": HOST})
    (gw,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"].endswith("-gateway-env")]
    (ing,) = [o for o in objs if o["kind"] == "Ingress" and o["metadata"]["name"] == "prometheus"]
    assert gw["data"]["PROMETHEUS_URL"] == f"http://prometheus:9090{_served_url(ing)[2]}"
    assert "PROMETHEUS_URL" not in (gw["metadata"].get("annotations") or {}).get("addonstack.dev/secret-keys", "")
    r = generate_addon_stack({"instanceId": "t1", "services": ["prometheus"], "publicBaseUrl": "https://b.example"})
    (route,) = [x for x in r.proxy_routes if x.service_id == "prometheus" and x.protocol == "http"]
    assert r.gateway_env["PROMETHEUS_URL"] == f"http://prometheus:9090{route.path}"


def _with_check(cat: Catalog, sid: str, **update: Any) -> Catalog:
    svc = cat.services[sid]
    assert svc.health_check is not None and svc.health_check.http is not None
    http = svc.health_check.http.model_copy(update={k: v for k, v in update.items() if k != "compose_test"})
    hc: HealthCheck = svc.health_check.model_copy(update={"http": http})
    if "compose_test" in update:
        hc = hc.model_copy(update={"compose_test": update["compose_test"]})
    return dataclasses.replace(cat, services={**cat.services, sid: svc.model_copy(update={"health_check": hc})})


@pytest.mark.parametrize(
    ("sid", "update", "message"),
    [
        ("prometheus", {"base_path_var": "NO_SUCH"}, "basePathVar: 'NO_SUCH' is not a variable"),
        (
            "prometheus",
            {"compose_test": ["CMD", "wget", "-q", "--spider", "http://localhost:9090/-/healthy"]},
            "put ${PROMETHEUS_ROUTE_PREFIX} before the path",
        ),
        ("n8n", {"base_path_var": "N8N_HOST"}, "publicUrl.subPath is not true"),
    ],
)
def test_lint_refuses_a_base_path_the_probes_cannot_follow(
    catalog: Catalog, sid: str, update: dict[str, Any], message: str
) -> None:
    problems = lint(_with_check(catalog, sid, **update))
    assert [p for p in problems if message in p], problems
