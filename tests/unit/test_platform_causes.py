"""Issue 14's platform-wide causes of entries that reach Ready yet do not work, each pinned to real entries.

Every test renders real catalog entries (no copy of the catalog with a field changed), so it fails when
one of those entries regresses. CREATEDB and extensions (cause 5) are checked on a real PostgreSQL with
chatwoot-worker in ``test_database_grants``; workers told their app's URL in ``test_public_url_companions``.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from addonstack.api import generate_addon_stack
from addonstack.catalog.lint import offered_by_default
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render import yamlio
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _k8s(cat: Catalog, ids: list[str], gpu: bool = False) -> list[dict[str, Any]]:
    creds = {f"{sid}.{v.key}": "user-value" for sid in ids for v in cat.services[sid].env if v.credential}
    spec = AddonStackSpec.model_validate(
        {
            "services": ids,
            "allowExperimental": True,
            "gpu": gpu,
            "database": {"host": "pg.example", "adminSecretRef": {"name": "pg-admin"}},
            "redis": {"host": "redis.example"},
        }
    )
    planned = plan_stack(cat, spec, "s1", "tenant", StackDefaults(), make_rng(7), creds)
    objs, _ = render_kubernetes(planned.plan, planned.context)
    return objs


def _pod(objs: list[dict[str, Any]], sid: str) -> dict[str, Any]:
    (wl,) = [o for o in objs if o["kind"] in ("Deployment", "StatefulSet") and o["metadata"]["name"] == sid]
    spec: dict[str, Any] = wl["spec"]["template"]["spec"]
    return spec


def _env(objs: list[dict[str, Any]], sid: str) -> dict[str, str]:
    """The container's variables, resolved from the rendered ConfigMaps and Secrets."""
    stores = {
        (o["kind"], o["metadata"]["name"]): o.get("data") or o.get("stringData") or {}
        for o in objs
        if o["kind"] in ("ConfigMap", "Secret")
    }
    out: dict[str, str] = {}
    for entry in _pod(objs, sid)["containers"][0].get("env", []):
        if "value" in entry:
            out[entry["name"]] = entry["value"]
            continue
        ref = entry["valueFrom"].get("configMapKeyRef") or entry["valueFrom"]["secretKeyRef"]
        kind = "ConfigMap" if "configMapKeyRef" in entry["valueFrom"] else "Secret"
        out[entry["name"]] = stores[(kind, ref["name"])][ref["key"]]
    return out


# ---- 1. companions that upstream runs as separate containers or commands -------------------------------


@pytest.mark.parametrize(
    ("app", "worker", "word"),
    [("chatwoot", "chatwoot-worker", "sidekiq"), ("authentik", "authentik-worker", "worker"),
     ("saleor", "saleor-worker", "celery"), ("twenty", "twenty-worker", "worker")],
)  # fmt: skip
def test_an_app_brings_its_worker_as_its_own_workload(catalog: Catalog, app: str, worker: str, word: str) -> None:
    """Choosing only the app deploys its queue worker too: same image, the worker's own command."""
    objs = _k8s(catalog, [app])
    app_c, worker_c = _pod(objs, app)["containers"][0], _pod(objs, worker)["containers"][0]
    assert worker_c["image"] == app_c["image"]
    worker_cmd = [*worker_c.get("command", []), *worker_c.get("args", [])]
    assert any(word in part for part in worker_cmd), worker_cmd
    assert worker_cmd != [*app_c.get("command", []), *app_c.get("args", [])]


@pytest.mark.parametrize(
    ("sid", "init"),
    [("sentry", ["sentry", "upgrade", "--noinput"]),
     ("lasuite-meet-backend", ["python", "manage.py", "migrate", "--noinput"]),
     ("kong", None), ("chatwoot", None)],
)  # fmt: skip
def test_migrations_run_in_their_own_step_before_the_server(catalog: Catalog, sid: str, init: list[str] | None) -> None:
    """Upstream runs these migrations as a separate command (install script, Helm Job): an init container
    here, and the server container itself starts the server only."""
    svc = catalog.services[sid]
    assert svc.init_command is not None and (init is None or svc.init_command == init)
    pod = _pod(_k8s(catalog, [sid]), sid)
    (init_c,) = pod["initContainers"]
    assert init_c["command"] == svc.init_command
    server = " ".join([*pod["containers"][0].get("command", []), *pod["containers"][0].get("args", [])])
    assert not re.search(r"\b(migrate|upgrade|migrations)\b", server), server


# ---- 2. shared dependencies served the way their consumers speak to them -------------------------------


def test_opensearch_serves_plain_http_without_login_as_its_consumers_speak(catalog: Catalog) -> None:
    """Graylog and RAGFlow send plain HTTP to opensearch:9200; the security plugin (HTTPS with a demo
    certificate, admin login) would refuse them, so it is off and the gateway's URL says http too."""
    objs = _k8s(catalog, ["graylog"])
    search = _env(objs, "opensearch")
    assert search["DISABLE_SECURITY_PLUGIN"] == "true" and search["DISABLE_INSTALL_DEMO_CONFIG"] == "true"
    (http_port,) = [p.container for p in catalog.services["opensearch"].ports if p.name == "http"]
    assert _env(objs, "graylog")["GRAYLOG_ELASTICSEARCH_HOSTS"] == f"http://opensearch:{http_port}"
    probe = _pod(objs, "opensearch")["containers"][0]["readinessProbe"]["httpGet"]
    assert probe.get("scheme", "HTTP") == "HTTP" and probe["port"] == http_port
    consumers = [s.id for s in catalog.addons() if "opensearch" in s.requires]
    assert {"graylog", "ragflow"} <= set(consumers)
    for sid in consumers:
        for var in catalog.services[sid].env:
            assert "https://opensearch" not in (var.default or ""), f"{sid}.{var.key}"
    gateway = {g.key: g.value for g in catalog.services["opensearch"].gateway_env}
    assert gateway["OPENSEARCH_URL"] == f"http://opensearch:{http_port}"


# ---- 3. services that drive the Docker engine --------------------------------------------------------

_SOCKET = re.compile(r"docker socket|docker\.sock")


def test_entries_that_say_they_use_the_docker_socket_get_it_only_on_compose_and_only_on_request(
    catalog: Catalog,
) -> None:
    said = {s.id for s in catalog.addons() if _SOCKET.search(" ".join(s.description.split()).lower())}
    assert {"dozzle", "portainer", "watchtower", "openhands", "pentagi"} <= said
    assert said <= {s.id for s in catalog.addons() if s.docker_socket}
    for sid in ("dozzle", "portainer"):  # beta entries: offered on Compose hosts that opt in
        spec = AddonStackSpec.model_validate({"services": [sid], "allowExperimental": True})
        planned = plan_stack(catalog, spec, "s1", "tenant", StackDefaults(), make_rng(7))
        assert [s.reason for s in planned.plan.skipped if s.service_id == sid] == ["docker_socket"]
        assert sid not in planned.plan.ids
        r = generate_addon_stack({"instanceId": "t1", "services": [sid]}, seed=1, catalog=catalog)
        assert [s.reason for s in r.metadata.skipped_services] == ["docker_socket"]
        r = generate_addon_stack(
            {"instanceId": "t1", "services": [sid], "allowDockerSocket": True}, seed=1, catalog=catalog
        )
        volumes = yamlio.load(r.compose_override)["services"][sid]["volumes"]
        assert "/var/run/docker.sock:/var/run/docker.sock" in volumes


# ---- 4. non-root pods own their freshly provisioned volumes ---------------------------------------------


def test_every_non_root_entry_with_a_volume_gets_an_fsgroup(catalog: Catalog) -> None:
    """A claim is provisioned owned by root on many storage classes: without fsGroup a non-root image
    cannot write to it. Rendered for every restricted entry that has a volume."""
    ids = [s.id for s in catalog.addons() if s.volumes and s.pod_security_level == "restricted"]
    assert len(ids) >= 50 and {"gitea", "grafana", "n8n"} <= set(ids)
    for sid in ids:
        psc = _pod(_k8s(catalog, [sid], gpu=True), sid)["securityContext"]  # tabby-ml needs a GPU
        assert psc["runAsNonRoot"] is True, sid
        assert isinstance(psc.get("fsGroup"), int), f"{sid}: no fsGroup for its volumes"
        assert psc["fsGroupChangePolicy"] == "OnRootMismatch", sid


# ---- 6. volumes mounted where data lives, not over what the image ships -------------------------------


def test_mautic_mounts_only_the_upload_folders_so_its_bundled_media_stays_visible(catalog: Catalog) -> None:
    """docroot/media of the Mautic image holds bundled assets (JS, CSS, images of the builder); a volume
    there would hide them, so only its files/ and images/ subfolders are volumes."""
    pod = _pod(_k8s(catalog, ["mautic"]), "mautic")
    mounts = {m["mountPath"] for m in pod["containers"][0]["volumeMounts"]}
    assert {"/var/www/html/docroot/media/files", "/var/www/html/docroot/media/images"} <= mounts
    for hidden in ("/var/www/html", "/var/www/html/docroot", "/var/www/html/docroot/media"):
        assert hidden not in mounts


# ---- 7. builds pinned to a git ref ----------------------------------------------------------------------


def test_offered_builds_are_pinned_and_compose_builds_that_ref(catalog: Catalog) -> None:
    built = [s for s in catalog.addons() if s.build is not None and s.maturity != "experimental"]
    assert {"solidityguard", "pentestagent", "steel-browser"} <= {s.id for s in built}
    for svc in built:
        assert svc.build is not None and svc.build.ref, f"{svc.id}: build not pinned"
    r = generate_addon_stack({"instanceId": "t1", "services": ["solidityguard"]}, seed=1, catalog=catalog)
    build = yamlio.load(r.compose_override)["services"]["solidityguard"]["build"]
    assert build["context"] == "https://github.com/alt-research/SolidityGuard.git#v1.3.2"


# ---- 8. entries that say they cannot work alone are not offered by default ----------------------------

_PREVIEW = re.compile(
    r"\b(consider it|treat (it|this[^.]*) as|so it is) a preview\b|\bon its own this (container|entry)\b"
)


def test_entries_whose_description_calls_them_a_preview_are_opt_in(catalog: Catalog) -> None:
    previews = sorted(s.id for s in catalog.addons() if _PREVIEW.search(" ".join(s.description.split())))
    assert {"appwrite", "coolify", "dokploy", "opensandbox", "sentry", "signoz"} <= set(previews)
    for sid in previews:
        svc = catalog.services[sid]
        assert not offered_by_default(catalog, svc), sid
        assert svc.maturity_note, f"{sid}: says what it lacks"
    r = generate_addon_stack({"instanceId": "t1", "services": ["signoz", "sentry"]}, seed=1, catalog=catalog)
    assert sorted((s.service_id, s.reason) for s in r.metadata.skipped_services) == [
        ("sentry", "experimental"),
        ("signoz", "experimental"),
    ]
