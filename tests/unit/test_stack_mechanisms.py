"""Platform-wide mechanisms, each on real catalog entries: env overrides, init commands, opt-in maturity,
the Docker socket, pinned builds, and the catalog lint rules that go with them.

Where no catalog entry uses a mechanism yet (the catalog is being verified entry by entry), a real
entry is given the field in a copy of the catalog, so the test still runs the real planner and renderers.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from addonstack.api import generate_addon_stack
from addonstack.catalog import lint as catalog_lint
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.catalog.model import BuildSource, PublicUrl, PublicUrlVar
from addonstack.cli.main import cli
from addonstack.plan.secrets import env_file_key, make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render import envfile, yamlio
from addonstack.render.compose import init_id
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.schemas import compose_errors


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _with(cat: Catalog, sid: str, **update: Any) -> Catalog:
    return dataclasses.replace(cat, services={**cat.services, sid: cat.services[sid].model_copy(update=update)})


_DB = {"database": {"host": "pg.example", "adminSecretRef": {"name": "pg-admin"}}}


def _k8s(cat: Catalog, spec: dict[str, Any]) -> tuple[Any, list[dict[str, Any]]]:
    full = {**_DB, **spec}
    planned = plan_stack(cat, AddonStackSpec.model_validate(full), "s1", "tenant", StackDefaults(), make_rng(5))
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    return plan, objs


def _obj(objs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    (found,) = [o for o in objs if o["kind"] == kind and o["metadata"]["name"] == name]
    return found


def _gen(cat: Catalog, **kw: Any) -> Any:
    return generate_addon_stack({"instanceId": "t1", **kw}, seed=3, catalog=cat)


# ---- env overrides ------------------------------------------------------------------------------------


def test_spec_env_overrides_are_applied_last_and_reach_the_container(catalog: Catalog) -> None:
    svc = catalog.services["n8n"]
    plain = next(v for v in svc.env if not v.secret and v.default is not None and v.in_container)
    generated = next(v for v in svc.env if v.generate is not None)
    plan, objs = _k8s(
        catalog,
        {
            "services": ["n8n"],
            "overrides": {
                "n8n": {
                    "env": {plain.key: "from-override", "EXTRA_FLAG": "on", generated.key: "plain-secret-value"},
                    "envFrom": [{"secretRef": {"name": "n8n-extra"}}],
                }
            },
        },
    )
    config = _obj(objs, "ConfigMap", "n8n-config")["data"]
    secret = _obj(objs, "Secret", "n8n-env")["stringData"]
    assert config[plain.key] == "from-override"
    assert secret["EXTRA_FLAG"] == "on" and secret[generated.key] == "plain-secret-value"
    container = _obj(objs, "Deployment", "n8n")["spec"]["template"]["spec"]["containers"][0]
    names = [e["name"] for e in container["env"]]
    assert plain.key in names and "EXTRA_FLAG" in names
    assert container["envFrom"] == [{"secretRef": {"name": "n8n-extra"}}]
    warned = [w for w in plan.warnings if f"overrides.n8n.env.{generated.key}" in w]
    assert warned and "generated secret" in warned[0] and "plain-secret-value" not in warned[0]


def test_env_override_names_are_validated_with_the_field(catalog: Catalog) -> None:
    with pytest.raises(ValidationError) as exc:
        AddonStackSpec.model_validate({"services": ["n8n"], "overrides": {"n8n": {"env": {"1BAD-NAME": "x"}}}})
    text = str(exc.value)
    assert "overrides.n8n.env" in text and "letters, digits and '_'" in text
    with pytest.raises(ValidationError, match="envOverrides"):
        generate_addon_stack({"instanceId": "t1", "services": ["n8n"], "envOverrides": {"n8n": {"A B": "x"}}})


def test_library_env_overrides_reach_env_file_and_compose(catalog: Catalog) -> None:
    r = _gen(catalog, services=["n8n"], envOverrides={"n8n": {"N8N_LOG_LEVEL": "debug"}, "qdrant": {"X": "1"}})
    env = envfile.parse(r.env_file).values["n8n"]
    assert env[env_file_key("n8n", "N8N_LOG_LEVEL")] == "debug"
    doc = yamlio.load(r.compose_override)
    assert doc["services"]["n8n"]["environment"]["N8N_LOG_LEVEL"] == "${" + env_file_key("n8n", "N8N_LOG_LEVEL") + "}"
    assert any("envOverrides.qdrant" in w and "not deployed" in w for w in r.warnings)
    assert compose_errors(doc) == []


def test_render_shows_the_overrides(tmp_path: Any) -> None:
    manifest = tmp_path / "stack.yaml"
    manifest.write_text(
        yamlio.dump(
            {
                "apiVersion": "addonstack.dev/v1alpha1",
                "kind": "AddonStack",
                "metadata": {"name": "demo", "namespace": "tenant"},
                "spec": {"services": ["n8n"], "overrides": {"n8n": {"env": {"N8N_LOG_LEVEL": "debug"}}}},
            }
        )
    )
    res = CliRunner().invoke(cli, ["render", "--target", "k8s", "-f", str(manifest), "--seed", "1"])
    assert res.exit_code == 0, res.output
    docs = [d for d in yamlio.load_all(res.stdout) if d]
    # Not a catalog variable of n8n: stored in its Secret like any undeclared value, and passed on.
    assert _obj(docs, "Secret", "n8n-env")["stringData"]["N8N_LOG_LEVEL"] == "debug"
    container = _obj(docs, "Deployment", "n8n")["spec"]["template"]["spec"]["containers"][0]
    assert "N8N_LOG_LEVEL" in [e["name"] for e in container["env"]]


# ---- initCommand -------------------------------------------------------------------------------------


def test_init_command_runs_first_with_the_same_image_env_and_volumes(catalog: Catalog) -> None:
    svc = catalog.services["chatwoot"]
    assert svc.init_command
    _, objs = _k8s(catalog, {"services": ["chatwoot"], "redis": {"host": "redis.example"}})
    pod = _obj(objs, "Deployment", "chatwoot")["spec"]["template"]["spec"]
    (init,) = pod["initContainers"]
    (app,) = pod["containers"]
    assert init["command"] == svc.init_command
    for key in ("image", "env", "volumeMounts", "securityContext"):
        assert init[key] == app[key], key
    r = _gen(catalog, services=["chatwoot"])
    services = yamlio.load(r.compose_override)["services"]
    one_shot = services[init_id("chatwoot")]
    assert one_shot["entrypoint"] == svc.init_command and one_shot["restart"] == "no"
    for key in ("image", "environment", "volumes"):
        assert one_shot[key] == services["chatwoot"][key], key
    assert services["chatwoot"]["depends_on"][init_id("chatwoot")] == {"condition": "service_completed_successfully"}
    assert compose_errors(yamlio.load(r.compose_override)) == []


# ---- maturity and the Docker socket ---------------------------------------------------------------------


def test_experimental_entries_are_skipped_unless_allowed(catalog: Catalog) -> None:
    exp = next(
        s
        for s in catalog.addons()
        if s.maturity == "experimental" and not s.needs_build and s.gpu == "none" and not any(e.required for e in s.env)
    )
    r = _gen(catalog, services=[exp.id])
    assert [(s.service_id, s.reason) for s in r.metadata.skipped_services] == [(exp.id, "experimental")]
    assert any(exp.id in w and "allowExperimental" in w for w in r.warnings)
    assert exp.id in _gen(catalog, services=[exp.id], allowExperimental=True).metadata.resolved_services
    plan, _ = _k8s(catalog, {"services": [exp.id]})
    assert [s.reason for s in plan.skipped if s.service_id == exp.id] == ["experimental"]
    plan, _ = _k8s(catalog, {"services": [exp.id], "allowExperimental": True})
    assert exp.id in plan.ids


def test_docker_socket_services(catalog: Catalog) -> None:
    users = [s.id for s in catalog.addons() if s.docker_socket and s.maturity != "experimental"]
    sid = users[0] if users else "n8n"
    cat = catalog if users else _with(catalog, sid, docker_socket=True)
    plan, objs = _k8s(cat, {"services": [sid], "allowExperimental": True})
    assert [s.reason for s in plan.skipped if s.service_id == sid] == ["docker_socket"]
    assert not [o for o in objs if o["kind"] in ("Deployment", "StatefulSet")]
    r = _gen(cat, services=[sid], allowExperimental=True)
    assert [s.reason for s in r.metadata.skipped_services if s.service_id == sid] == ["docker_socket"]
    assert any("allowDockerSocket" in s.details for s in r.metadata.skipped_services)
    r = _gen(cat, services=[sid], allowExperimental=True, allowDockerSocket=True)
    doc = yamlio.load(r.compose_override)
    assert "/var/run/docker.sock:/var/run/docker.sock" in doc["services"][sid]["volumes"]
    assert compose_errors(doc) == []


# ---- pinned builds ---------------------------------------------------------------------------------


def test_compose_builds_a_pinned_entry_from_its_git_ref(catalog: Catalog) -> None:
    built = next(
        s
        for s in catalog.addons()
        if s.build and s.build.ref and s.gpu == "none" and not any(e.required for e in s.env)
    )
    r = _gen(catalog, services=[built.id], allowExperimental=True, allowDockerSocket=True)
    doc = yamlio.load(r.compose_override)
    build = doc["services"][built.id]["build"]
    assert build["context"].startswith(built.build.repository)  # type: ignore[union-attr]
    assert f".git#{built.build.ref}" in build["context"]  # type: ignore[union-attr]
    assert build["dockerfile"] == built.build.dockerfile  # type: ignore[union-attr]
    assert compose_errors(doc) == []
    # Kubernetes cannot build: the entry still needs prebuiltImages there.
    plan, _ = _k8s(catalog, {"services": [built.id], "allowExperimental": True})
    assert [s.reason for s in plan.skipped if s.service_id == built.id] == ["no_image"]


# ---- catalog lint ------------------------------------------------------------------------------------


def test_lint_checks_public_url_variables(catalog: Catalog) -> None:
    bad = PublicUrl(
        sub_path=True,
        env=[
            PublicUrlVar(key="NOT_DECLARED", value="${PUBLIC_URL}"),
            PublicUrlVar(key="N8N_HOST", value="${PUBLIC_HOSTNAME}"),
        ],
    )
    problems = catalog_lint.lint(_with(catalog, "n8n", public_url=bad))
    assert any("publicUrl.env.0.key" in p and "NOT_DECLARED" in p for p in problems)
    assert any("publicUrl.env.1.value" in p and "PUBLIC_HOSTNAME" in p for p in problems)


def test_lint_truth_rules(catalog: Catalog) -> None:
    verified = next(s for s in catalog.addons() if s.verified and s.maturity == "beta" and s.maturity_note)
    cat = _with(catalog, verified.id, sources=[], maturity_note=None)
    problems = [p for p in catalog_lint.lint(cat) if verified.id in p]
    assert any("sources:" in p for p in problems) and any("maturityNote:" in p for p in problems)
    built = next(s for s in catalog.addons() if s.build is not None)
    unpinned = _with(
        catalog,
        built.id,
        verified=verified.verified,
        maturity="beta",
        maturity_note="x",
        build=BuildSource(repository="https://x.example/r"),
    )
    assert any(f"{built.id}" in p and "build.ref" in p for p in catalog_lint.lint(unpinned))
    # The rules hold for every entry: an unverified stable entry is reported without being asked.
    assert catalog_lint.TRUTH_RULES_FOR_ALL
    cat = _with(catalog, "n8n", verified=None, sources=[])
    assert {p.split(": ", 2)[1] for p in catalog_lint.lint(cat) if "n8n.yaml" in p} == {"sources", "verified"}
    assert [p for p in catalog_lint.lint(cat, truth_everywhere=False) if "n8n.yaml" in p] == []
    assert catalog_lint.lint(catalog) == []


def test_lint_maturity_rules(catalog: Catalog) -> None:
    """What a deployable entry leans on must be deployable too; a Docker-socket entry is never stable."""
    exp = next(s.id for s in catalog.addons() if s.maturity == "experimental")
    cat = _with(catalog, "n8n", requires=[*catalog.services["n8n"].requires, exp])
    assert any("n8n.yaml: requires:" in p and repr(exp) in p for p in catalog_lint.lint(cat))
    cat = _with(catalog, "n8n", docker_socket=True)
    assert any("n8n.yaml: maturity:" in p and "Docker socket" in p for p in catalog_lint.lint(cat))


def test_packs_install_no_skipped_service_by_default(catalog: Catalog) -> None:
    """ecommerce-ops runs on Saleor (Medusa is experimental: no upstream image) and installs whole."""
    r = _gen(catalog, services=[], skillPacks=["ecommerce-ops"])
    assert r.metadata.skipped_services == []
    assert {"saleor", "saleor-worker", "minio"} <= set(r.metadata.resolved_services)
    assert "medusa" not in r.metadata.resolved_services
    # The lint reports a pack that would install only part of itself.
    pack = catalog.packs["ecommerce-ops"]
    mixed = pack.model_copy(update={"required_services": [*pack.required_services, "medusa"]})
    cat = dataclasses.replace(catalog, packs={**catalog.packs, pack.id: mixed})
    assert any("ecommerce-ops.yaml: requiredServices:" in p and "'medusa'" in p for p in catalog_lint.lint(cat))
    for p in catalog.packs.values():
        offered = [s for s in p.required_services if catalog_lint.offered_by_default(catalog, catalog.services[s])]
        assert offered in ([], p.required_services), p.id


def test_render_compose_skips_docker_socket_services_for_the_opt_in(tmp_path: Any, catalog: Catalog) -> None:
    sid = next(s.id for s in catalog.addons() if s.docker_socket)
    manifest = tmp_path / "stack.yaml"
    spec = {"services": [sid], "allowExperimental": True}
    manifest.write_text(yamlio.dump({"apiVersion": "addonstack.dev/v1alpha1", "kind": "AddonStack",
                                     "metadata": {"name": "demo"}, "spec": spec}))  # fmt: skip
    for target, says in (("compose", "allowDockerSocket"), ("k8s", "Compose target")):
        res = CliRunner().invoke(cli, ["render", "--target", target, "-f", str(manifest), "--seed", "1"])
        assert res.exit_code == 0, res.output
        assert says in " ".join(res.output.split()), res.output


def test_a_removed_override_and_a_new_host_reach_the_service_on_the_next_reconcile(catalog: Catalog) -> None:
    """The operator re-plans with the live Secrets and ConfigMaps as existing values: secrets are kept,
    plain values are worked out again."""
    svc = catalog.services["n8n"]
    public_keys = {v.key for v in svc.public_url.env} if svc.public_url else set()
    plain = next(
        v for v in svc.env if not v.secret and v.default and "${" not in v.default and v.key not in public_keys
    )
    secret = next(v for v in svc.env if v.generate is not None)
    _, first = _k8s(catalog, {"services": ["n8n"], "overrides": {"n8n": {"env": {plain.key: "overridden"}}}})
    live = {
        "n8n": {
            **_obj(first, "ConfigMap", "n8n-config")["data"],
            **_obj(first, "Secret", "n8n-env")["stringData"],
        }
    }
    assert live["n8n"][plain.key] == "overridden"
    full = {"services": ["n8n"], "ingress": {"host": "apps.example.com"}, **_DB}
    planned = plan_stack(
        catalog, AddonStackSpec.model_validate(full), "s1", "tenant", StackDefaults(), make_rng(9), existing_values=live
    )
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    assert _obj(objs, "ConfigMap", "n8n-config")["data"][plain.key] == plain.default
    assert _obj(objs, "Secret", "n8n-env")["stringData"][secret.key] == live["n8n"][secret.key]
    told = svc.public_url.env[0] if svc.public_url and svc.public_url.env else None
    if told is not None:
        stored = {**_obj(objs, "ConfigMap", "n8n-config")["data"], **_obj(objs, "Secret", "n8n-env")["stringData"]}
        assert "n8n.apps.example.com" in stored[told.key]
