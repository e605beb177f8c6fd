"""Workers told the public URL of the web app they serve (``publicUrl.env[].of``).

A Sidekiq or Celery worker is never routed, yet it writes the app's links into emails and webhook
payloads. The expected URL is read back from the app's rendered Ingress (or the library's proxy route),
never recomputed the way the planner does, and compared with what the worker's container gets.
"""

from __future__ import annotations

import dataclasses

import pytest

from addonstack.api import generate_addon_stack
from addonstack.catalog.lint import lint
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.catalog.model import PublicUrl, PublicUrlVar, Service
from addonstack.plan.secrets import env_file_key
from addonstack.render import envfile
from tests.unit.test_public_urls import HOST, _container_env, _fill, _render, _served_url


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _companions(cat: Catalog) -> list[tuple[Service, str]]:
    """Every entry with a variable taken from another service's address, with that service."""
    out: set[tuple[str, str]] = set()
    for s in cat.addons():
        for var in s.public_url.env if s.public_url else []:
            if var.of:
                out.add((s.id, var.of))
    return [(cat.services[sid], of) for sid, of in sorted(out)]


def test_the_known_workers_take_their_apps_address(catalog: Catalog) -> None:
    pairs = {(s.id, of) for s, of in _companions(catalog)}
    assert {("chatwoot-worker", "chatwoot"), ("saleor-worker", "saleor"), ("twenty-worker", "twenty")} <= pairs


@pytest.mark.parametrize(
    "ingress",
    [
        {"className": "nginx", "host": HOST, "clusterIssuer": "letsencrypt"},
        {"className": "traefik", "host": HOST, "tlsSecretName": "apps-tls", "pathPrefix": "/tools"},
    ],
    ids=["path-routes", "prefix"],
)
def test_every_worker_is_told_the_url_its_apps_ingress_serves(catalog: Catalog, ingress: dict[str, str]) -> None:
    checked = 0
    for worker, of in _companions(catalog):
        _, objs = _render(catalog, [worker.id, of], ingress)
        (ing,) = [o for o in objs if o["kind"] == "Ingress" and o["metadata"]["name"] == of]
        scheme, host, path = _served_url(ing)
        env = _container_env(objs, worker.id)
        assert worker.public_url is not None
        for var in worker.public_url.env:
            if var.of == of:
                expected = _fill(var.value, scheme, host, path)
                assert env[var.key] == expected, f"{worker.id}.{var.key}"
                checked += 1
    assert checked >= 3


def test_chatwoot_and_its_worker_agree(catalog: Catalog) -> None:
    """The one pair where both containers read the same variable: equal values, the web app's own host."""
    _, objs = _render(catalog, ["chatwoot"], {"className": "nginx", "host": HOST, "tlsSecretName": "t"})
    web, worker = _container_env(objs, "chatwoot"), _container_env(objs, "chatwoot-worker")
    assert web["FRONTEND_URL"] == worker["FRONTEND_URL"] == f"https://chatwoot.{HOST}"


def test_without_a_host_or_without_the_app_the_default_stays(catalog: Catalog) -> None:
    worker = catalog.services["twenty-worker"]
    default = worker.env_var("SERVER_URL")
    assert default is not None and default.default == "http://twenty:3000"
    _, objs = _render(catalog, ["twenty"], {"className": "nginx"})
    assert _container_env(objs, "twenty-worker")["SERVER_URL"] == default.default
    _, objs = _render(catalog, ["twenty-worker"], {"className": "nginx", "host": HOST})
    assert _container_env(objs, "twenty-worker")["SERVER_URL"] == default.default


def test_library_public_base_url_reaches_the_worker(catalog: Catalog) -> None:
    r = generate_addon_stack(
        {"instanceId": "t1", "services": ["saleor"], "publicBaseUrl": "https://box.example.com"}, seed=1
    )
    env = {k: v for section in envfile.parse(r.env_file).values.values() for k, v in section.items()}
    (route,) = [x for x in r.proxy_routes if x.service_id == "saleor" and x.protocol == "http"]
    served = f"https://{route.host}" if route.host else f"https://box.example.com{route.path}"
    assert env[env_file_key("saleor-worker", "PUBLIC_URL")] == served == env[env_file_key("saleor", "PUBLIC_URL")]


def _with_of(cat: Catalog, sid: str, of: str) -> Catalog:
    svc = cat.services[sid]
    var = PublicUrlVar(key=svc.env[0].key, value="${PUBLIC_URL}", of=of)
    services = {**cat.services, sid: svc.model_copy(update={"public_url": PublicUrl(env=[var])})}
    return dataclasses.replace(cat, services=services)


@pytest.mark.parametrize(
    ("sid", "of", "message"),
    [
        ("chatwoot-worker", "gitea", "neither is required by 'chatwoot-worker' nor requires it"),
        ("chatwoot-worker", "chatwoot-worker", "names the entry itself"),
        ("chatwoot-worker", "no-such-app", "unknown service 'no-such-app'"),
        ("chatwoot", "chatwoot-worker", "'chatwoot-worker' has no exposed HTTP port"),
    ],
)
def test_lint_refuses_an_address_of_an_unrelated_or_unroutable_service(
    catalog: Catalog, sid: str, of: str, message: str
) -> None:
    problems = lint(_with_of(catalog, sid, of))
    assert [p for p in problems if "publicUrl.env.0.of: " in p and message in p], problems


def test_lint_accepts_either_direction_of_requires(catalog: Catalog) -> None:
    assert "chatwoot-worker" in catalog.services["chatwoot"].requires  # the app requires its worker
    assert lint(_with_of(catalog, "chatwoot-worker", "chatwoot")) == []
    # The other direction: an entry taking the address of a routed web service it requires itself.
    sid, of = next(
        (s.id, dep)
        for s in sorted(catalog.addons(), key=lambda s: s.id)
        for dep in s.requires
        if s.env and any(p.protocol == "http" and p.exposed for p in catalog.services[dep].ports)
    )
    assert [p for p in lint(_with_of(catalog, sid, of)) if "publicUrl" in p] == []
