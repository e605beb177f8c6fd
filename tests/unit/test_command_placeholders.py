"""``${KEY}`` in an entry's command, args or initCommand: a flag that carries a public URL.

Prometheus and Alertmanager take their public address as ``--web.external-url``, not from the environment.
The catalog names a variable in the flag; Kubernetes gets ``$(KEY)`` (expanded from the container's own
variable, whose value comes from the rendered ConfigMap) and Compose the variable's env-file reference,
read back here by Compose's own loader. The URL each flag must carry is read from the Ingress or the proxy
route, never recomputed.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from addonstack.api import generate_addon_stack
from addonstack.catalog.lint import lint
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.catalog.model import COMMAND_VAR, Service
from tests.composeview import compose_view
from tests.unit.test_public_urls import HOST, _container_env, _render, _served_url

FLAG_ENTRIES = {"prometheus": "--web.external-url=", "alertmanager": "--web.external-url="}


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _with_placeholder(svc: Service) -> bool:
    return any(COMMAND_VAR.search(c) for c in [*(svc.command or []), *(svc.args or []), *(svc.init_command or [])])


def _kubelet_expand(item: str, env: dict[str, str]) -> str:
    """Kubernetes' rule for command and args: ``$(VAR)`` becomes the container's variable when it is defined,
    ``$$`` a single ``$``; anything else stays as written."""
    return re.sub(
        r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)",
        lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)),
        item,
    )


def _fill_vars(item: str, env: dict[str, str]) -> str:
    """The catalog item with each ${KEY} replaced by the value the container gets for KEY."""
    return COMMAND_VAR.sub(lambda m: env[m.group(1)], item)


def _workload(objs: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (w,) = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == sid]
    return w


def test_the_flag_entries_use_a_placeholder(catalog: Catalog) -> None:
    users = {s.id for s in catalog.addons() if _with_placeholder(s)}
    assert set(FLAG_ENTRIES) <= users


@pytest.mark.parametrize(
    "ingress",
    [{"className": "nginx", "host": HOST, "tlsSecretName": "apps-tls"}, {"className": "nginx"}],
    ids=["with-host", "no-host"],
)
def test_kubernetes_flags_carry_the_url_the_ingress_serves(catalog: Catalog, ingress: dict[str, str]) -> None:
    for sid, flag in FLAG_ENTRIES.items():
        _, objs = _render(catalog, [sid], ingress)
        container = _workload(objs, sid)["spec"]["template"]["spec"]["containers"][0]
        env = _container_env(objs, sid)
        args = [_kubelet_expand(a, env) for a in container["args"]]
        (value,) = [a.removeprefix(flag) for a in args if a.startswith(flag)]
        if "host" in ingress:
            (ing,) = [o for o in objs if o["kind"] == "Ingress" and o["metadata"]["name"] == sid]
            scheme, host, path = _served_url(ing)
            assert value == f"{scheme}://{host}{path}", sid
        else:
            assert value == "", f"{sid}: without a public address the program picks its own default"
        assert not any("$(" in a for a in args), f"{sid}: an unexpanded reference is left: {args}"


def test_every_placeholder_expands_to_its_variable_on_kubernetes(catalog: Catalog) -> None:
    """Over the whole catalog: each item with ${KEY}, as Kubernetes expands it, equals the item with the value
    the container gets for KEY; literal $(...) in other items stays literal."""
    checked = 0
    for svc in sorted(catalog.addons(), key=lambda s: s.id):
        if not _with_placeholder(svc) or svc.docker_socket:
            continue
        _, objs = _render(catalog, [svc.id], {"className": "nginx", "host": HOST})
        container = _workload(objs, svc.id)["spec"]["template"]["spec"]["containers"][0]
        env = _container_env(objs, svc.id)
        for field, items in (("command", svc.command), ("args", svc.args)):
            for want, got in zip(items or [], container.get(field, []), strict=True):
                expected = _fill_vars(want, env)
                assert _kubelet_expand(got, env) == expected, (svc.id, field, got)
                checked += 1
    assert checked > 0


def test_compose_flags_carry_the_url_the_proxy_route_serves(composecheck: Path, tmp_path: Path) -> None:
    for base in ("https://box.example.com", None):
        inp: dict[str, Any] = {"instanceId": "t1", "services": sorted(FLAG_ENTRIES)}
        if base:
            inp["publicBaseUrl"] = base
        result = generate_addon_stack(inp, seed=1)
        work = tmp_path / ("base" if base else "none")
        work.mkdir()
        view = compose_view(composecheck, result, work, {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})
        routes = {r.service_id: r for r in result.proxy_routes if r.protocol == "http"}
        for sid, flag in FLAG_ENTRIES.items():
            (value,) = [a.removeprefix(flag) for a in view["services"][sid]["command"] if a.startswith(flag)]
            route = routes[sid]
            served = f"https://{route.host}" if route.host else f"{base}{route.path}"
            assert value == (served if base else ""), (sid, base)


def test_a_literal_dollar_in_a_command_is_not_taken_for_a_placeholder(catalog: Catalog) -> None:
    """Shell scripts in the catalog use $VAR and $(cmd): both reach the shell unchanged on both targets."""
    svc = catalog.services["nats"]
    assert svc.command and "$NATS_TOKEN" in svc.command[-1]
    _, objs = _render(catalog, ["nats"], {"className": "nginx"})
    (item,) = [c for c in _workload(objs, "nats")["spec"]["template"]["spec"]["containers"][0]["command"] if "$" in c]
    assert item == svc.command[-1]


def _with_args(cat: Catalog, sid: str, args: list[str]) -> Catalog:
    svc = cat.services[sid].model_copy(update={"args": args})
    return dataclasses.replace(cat, services={**cat.services, sid: svc})


@pytest.mark.parametrize(
    ("sid", "item", "message"),
    [
        ("prometheus", "--x=${NO_SUCH}", "is not a variable of 'prometheus'"),
        ("n8n", "--password=${DB_POSTGRESDB_PASSWORD}", "is secret"),
        ("n8n", "--pw=${N8N_DB_PASSWORD}", "is secret"),
        ("changedetection", "--driver=${PLAYWRIGHT_DRIVER_URL}", "has no default"),
    ],
)
def test_lint_refuses_unknown_secret_or_unset_placeholders(catalog: Catalog, sid: str, item: str, message: str) -> None:
    problems = lint(_with_args(catalog, sid, [item]))
    assert [p for p in problems if "args.0: ${" in p and message in p], problems
