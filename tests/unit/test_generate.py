"""generate_addon_stack: the behaviours of the library contract, on the real catalog."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from addonstack import AddonStackInput, generate_addon_stack, get_all_services
from addonstack.api import AddonStackError
from addonstack.catalog.loader import load_catalog
from addonstack.constants import PLATFORM_ENV_KEYS
from addonstack.plan.build import build_plan
from addonstack.plan.models import StackOptions
from addonstack.plan.secrets import make_rng
from addonstack.render import envfile, yamlio
from tests.schemas import compose_errors, compose_refs


def gen(services: list[str], seed: int = 7, **kw: object) -> object:
    # Every entry renders here, opt-in ones included (test_maturity.py checks the defaults that skip them).
    opt_in = {"allowExperimental": True, "allowDockerSocket": True}
    return generate_addon_stack({"instanceId": "t1", "services": services, **opt_in, **kw}, seed=seed)


def env_keys(text: str) -> dict[str, str]:
    parsed = envfile.parse(text)
    return {k: v for section in parsed.values.values() for k, v in section.items()}


def assert_valid(result: object) -> None:
    compose = result.compose_override  # type: ignore[attr-defined]
    doc = yamlio.load(compose)
    assert compose_errors(doc) == []
    defined = set(env_keys(result.env_file))  # type: ignore[attr-defined]
    missing = compose_refs(compose) - defined - PLATFORM_ENV_KEYS
    assert not missing, f"referenced but not defined: {sorted(missing)}"
    # No stored value of a secret variable may appear in the Compose file.
    for group in result.env_vars:  # type: ignore[attr-defined]
        for var in group.vars:
            if var.secret and var.env_key and var.value and len(var.value) >= 8:
                assert var.value not in compose, f"{group.service_id}.{var.key} leaked into compose"


def test_reserved_port_moves_by_1000() -> None:
    r = gen(["n8n"], reservedPorts=[5678])
    assert r.metadata.port_assignments["n8n:5678"] == 6678
    assert "6678:5678" in r.compose_override


def test_port_moves_again_when_next_is_taken() -> None:
    r = gen(["n8n"], reservedPorts=[5678, 6678])
    assert r.metadata.port_assignments["n8n:5678"] == 6679


def test_infrastructure_is_dropped_with_warning() -> None:
    r = gen(["redis", "n8n", "postgresql"])
    assert r.metadata.resolved_services == ["n8n"]
    assert any("redis" in w and "postgresql" in w for w in r.warnings)
    assert not {"redis", "postgresql"} & set(yamlio.load(r.compose_override)["services"])


def test_gpu_required_service_is_skipped_without_gpu() -> None:
    gpu_only = [s.id for s in get_all_services() if s.gpu == "required" and not s.needs_build]
    assert gpu_only, "the catalog has GPU-only services"
    r = gen([gpu_only[0]])
    assert [(s.service_id, s.reason) for s in r.metadata.skipped_services] == [(gpu_only[0], "gpu_required")]
    assert r.metadata.service_count == 0 and r.warnings


def test_gpu_service_gets_device_reservation_with_gpu() -> None:
    gpu_only = [s.id for s in get_all_services() if s.gpu == "required" and not s.needs_build]
    r = gen([gpu_only[0]], gpu=True)
    doc = yamlio.load(r.compose_override)
    devices = doc["services"][gpu_only[0]]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"]
    assert_valid(r)


def test_missing_required_credential_skips_with_keys() -> None:
    needing = [s for s in get_all_services() if any(e.required for e in s.env) and not s.needs_build]
    assert needing, "the catalog has services with required credentials"
    svc = needing[0]
    keys = [e.key for e in svc.env if e.required]
    r = gen([svc.id], gpu=True)
    skip = r.metadata.skipped_services[0]
    assert (skip.service_id, skip.reason, skip.required_credentials) == (svc.id, "missing_credentials", keys)
    r2 = gen([svc.id], gpu=True, credentials={svc.id: {k: "user-value-123" for k in keys}})
    assert svc.id in r2.metadata.resolved_services


def test_credentials_reach_non_secret_variables() -> None:
    r = gen(["n8n"], credentials={"n8n": {"GENERIC_TIMEZONE": "Europe/Paris"}})
    assert env_keys(r.env_file)["N8N__GENERIC_TIMEZONE"] == "Europe/Paris"


def test_unknown_credential_key_is_an_error_naming_the_field() -> None:
    with pytest.raises(AddonStackError, match=r"credentials\.n8n\.NOPE"):
        gen(["n8n"], credentials={"n8n": {"NOPE": "x"}})


def test_templated_password_carries_the_real_password() -> None:
    r = gen(["n8n"])
    env = env_keys(r.env_file)
    assert env["N8N__DB_POSTGRESDB_PASSWORD"] == env["N8N__N8N_DB_PASSWORD"]
    assert len(env["N8N__N8N_DB_PASSWORD"]) >= 24


def test_same_seed_same_bytes_and_no_seed_differs() -> None:
    a, b = gen(["n8n", "qdrant"], seed=3), gen(["n8n", "qdrant"], seed=3)
    assert (a.compose_override, a.env_file) == (b.compose_override, b.env_file)
    c = generate_addon_stack({"instanceId": "t1", "services": ["n8n"]})
    d = generate_addon_stack({"instanceId": "t1", "services": ["n8n"]})
    assert c.env_file != d.env_file


def test_duplicates_collapse_with_warning() -> None:
    r = gen(["n8n", "n8n"])
    assert r.metadata.resolved_services == ["n8n"]
    assert any("Duplicate" in w for w in r.warnings)


def test_unknown_service_is_skipped() -> None:
    r = gen(["not-a-service"])
    assert r.metadata.skipped_services[0].reason == "unknown_service"
    assert r.metadata.service_count == 0


def test_conflict_skips_the_later_one() -> None:
    cat = load_catalog()
    pairs = [
        (s.id, c)
        for s in cat.addons()
        for c in s.conflicts
        if c in cat.services and not cat.services[c].platform_provided
    ]
    assert pairs
    first, second = pairs[0]
    r = gen([first, second], gpu=True)
    assert first in r.metadata.resolved_services and second not in r.metadata.resolved_services
    assert [s.reason for s in r.metadata.skipped_services if s.service_id == second] == ["conflict"]


def test_dependencies_are_added_first() -> None:
    cat = load_catalog()
    svc = next(
        s
        for s in cat.addons()
        if any(d in cat.services and not cat.services[d].platform_provided for d in s.requires)
        and not s.needs_build
        and s.gpu != "required"
        and not any(e.required for e in s.env)
    )
    r = gen([svc.id])
    deps = [d for d in svc.requires if not cat.services[d].platform_provided]
    order = r.metadata.resolved_services
    for d in deps:
        if d in order:
            assert order.index(d) < order.index(svc.id)
    assert set(r.metadata.added_dependencies) <= set(order)


def test_every_postgres_user_gets_its_own_database() -> None:
    cat = load_catalog()
    users = [
        s.id
        for s in cat.addons()
        if s.postgres and not s.needs_build and s.gpu != "required" and not any(e.required for e in s.env)
    ]
    r = gen(users, gpu=True)
    doc = yamlio.load(r.compose_override)
    script = doc["services"]["postgres-setup"]["command"][0]
    for sid in r.metadata.resolved_services:
        pg = cat.services[sid].postgres
        if pg:
            assert f"-v db={pg.database} -v role={pg.role}" in script
    assert "PASSWORD '" not in script  # passwords are psql variables, never SQL text


def test_port_override_clash_is_an_error() -> None:
    with pytest.raises(ValidationError, match="reservedPorts"):
        AddonStackInput.model_validate(
            {
                "instanceId": "a",
                "services": ["n8n"],
                "reservedPorts": [9000],
                "portOverrides": {"n8n": {"5678": 9000}},
            }
        )
    r = gen(["n8n"], portOverrides={"n8n": {"5678": 15678}})
    assert r.metadata.port_assignments["n8n:5678"] == 15678


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"instanceId": "bad\nname", "services": []}, "instanceId"),
        ({"instanceId": "", "services": []}, "instanceId"),
        ({"instanceId": "ok", "services": ["n8n"], "colour": "red"}, "colour"),
        ({"instanceId": "ok", "services": "n8n"}, "services"),
        ({"instanceId": "ok", "services": [""]}, "services.0"),
        ({"instanceId": "ok", "services": [], "reservedPorts": [70000]}, "reservedPorts.0"),
        ({"instanceId": "ok", "services": [], "platform": "linux/s390x"}, "platform"),
        ({"instanceId": "ok", "services": [], "portOverrides": {"n8n": {"abc": 1}}}, "portOverrides"),
    ],
)
def test_bad_input_names_the_field(payload: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        AddonStackInput.model_validate(payload)
    assert field in str(err.value)


def test_empty_result_is_valid() -> None:
    r = gen([])
    assert r.metadata.service_count == 0 and r.warnings
    assert_valid(r)


def test_json_uses_contract_names() -> None:
    d = gen(["n8n"]).model_dump(by_alias=True)
    # Every field of @better-openclaw/core's generate result, plus ours (streamRoutes, gatewayEnv).
    assert set(d) == {
        "composeOverride",
        "envFile",
        "envVars",
        "proxyRoutes",
        "streamRoutes",
        "skillFiles",
        "openclawConfigPatch",
        "additionalFiles",
        "gatewayEnv",
        "metadata",
        "warnings",
    }
    assert set(d["metadata"]) == {
        "serviceCount",
        "resolvedServices",
        "skippedServices",
        "portAssignments",
        "addedDependencies",
        "generatedSecretKeys",
        "estimatedMemoryMB",
        "skillCount",
        "prePullImages",
        "instanceSlug",
    }
    assert d["openclawConfigPatch"] == {"skills": {"entries": {"n8n-trigger": {"enabled": True}}}}
    assert "openclaw/workspace/skills/n8n-trigger/SKILL.md" in d["skillFiles"]
    group = d["envVars"][0]
    assert group["serviceName"] == "n8n" and {"key", "description", "value", "secret"} <= set(group["vars"][0])


def test_non_http_ports_are_not_http_routes() -> None:
    cat = load_catalog()
    svc = next(
        s
        for s in cat.addons()
        if any(p.exposed and p.protocol in ("tcp", "udp") for p in s.ports)
        and not s.needs_build
        and s.gpu != "required"
        and not any(e.required for e in s.env)
    )
    r = gen([svc.id])
    d = r.model_dump(by_alias=True, mode="json")
    assert all(isinstance(route["path"], str) and route["protocol"] == "http" for route in d["proxyRoutes"])
    streams = {(s["port"], s["protocol"]) for s in d["streamRoutes"]}
    wanted = {(p.container, p.protocol) for p in svc.ports if p.exposed and p.protocol != "http"}
    assert streams == wanted


def _deployable() -> list[str]:
    return [s.id for s in get_all_services()]


@pytest.mark.parametrize("service_id", _deployable())
def test_every_service_alone_renders_valid_compose(service_id: str) -> None:
    cat = load_catalog()
    svc = cat.services[service_id]
    # required credentials of the service and of the dependencies it brings (saleor needs saleor-worker's key)
    creds = {
        sid: {e.key: "user-supplied-value" for e in cat.services[sid].env if e.required}
        for sid in [service_id, *svc.requires]
        if sid in cat.services and any(e.required for e in cat.services[sid].env)
    }
    r = gen(
        [service_id],
        gpu=True,
        prebuiltImages={s.id: f"registry.local:5000/{s.id}:1.0" for s in get_all_services() if s.needs_build}
        | {service_id: f"registry.local:5000/{service_id}:1.0"},
        credentials=creds,
    )
    assert service_id in r.metadata.resolved_services, r.metadata.skipped_services
    assert_valid(r)


def test_all_services_at_once() -> None:
    cat = load_catalog()
    ids = _deployable()
    creds = {
        s.id: {e.key: "user-supplied-value" for e in s.env if e.required}
        for s in cat.addons()
        if any(e.required for e in s.env)
    }
    r = gen(
        ids,
        gpu=True,
        credentials=creds,
        prebuiltImages={s.id: f"registry.local:5000/{s.id}:1.0" for s in cat.addons() if s.needs_build},
    )
    assert_valid(r)
    skipped = {s.service_id: s.reason for s in r.metadata.skipped_services}
    assert set(skipped.values()) <= {"conflict"}, skipped
    # Generated secrets are never shared between services.
    env = env_keys(r.env_file)
    generated = [env[k] for k in r.metadata.generated_secret_keys]
    assert len(generated) == len(set(generated))
    # Ports are unique on the host.
    ports = list(r.metadata.port_assignments.values())
    assert len(ports) == len(set(ports))
    assert all(1 <= p <= 65535 for p in ports)


def test_prebuilt_image_keeps_registry_port_and_tag() -> None:
    cat = load_catalog()
    built = next(s for s in cat.addons() if s.needs_build)
    r = gen([built.id], prebuiltImages={built.id: "registry.local:5000/team/app:2.3.4"})
    assert r.metadata.skipped_services == [] or all(s.service_id != built.id for s in r.metadata.skipped_services)
    assert yamlio.load(r.compose_override)["services"][built.id]["image"] == "registry.local:5000/team/app:2.3.4"
    # Kubernetes cannot build: without prebuiltImages the entry is skipped (Compose builds a pinned ref).
    plan = build_plan(cat, "t1", [built.id], StackOptions(allow_experimental=True), make_rng(1), target="kubernetes")
    assert [s.reason for s in plan.skipped] == ["no_image"]
