"""The drop-in contract with ``@better-openclaw/core`` (issue 15): inputs it accepts, its result fields,
skips, stream routes, gateway environment and credentials that reach everything derived from them."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from addonstack import AddonStackError, AddonStackInput, generate_addon_stack, update_addon_stack
from addonstack.catalog.loader import load_catalog
from addonstack.plan.models import instance_slug
from addonstack.render.proxy import caddy_snippet, traefik_stream_labels


def deployable() -> list[str]:
    """Every service that can run alone with no input beyond gpu: true, minus declared conflicts."""
    cat = load_catalog()
    ids: list[str] = []
    for s in sorted(cat.addons(), key=lambda s: s.id):
        if s.needs_build or any(e.required for e in s.env):
            continue
        if not any(c in ids for c in s.conflicts) and not any(s.id in cat.services[i].conflicts for i in ids):
            ids.append(s.id)
    return ids


def gen(services: list[str], **extra: Any) -> Any:
    return generate_addon_stack({"instanceId": "t1", "services": services, **extra}, seed=1)


# ---- 1. inputs -------------------------------------------------------------------------------------------


def test_typescript_instance_ids_get_a_dns_slug() -> None:
    r = generate_addon_stack({"instanceId": "My_Instance_123", "services": ["qdrant"]}, seed=1)
    slug = r.metadata.instance_slug
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", slug) and slug.startswith("my-instance-123-")
    compose = yaml.safe_load(r.compose_override)
    assert compose["services"]["qdrant"]["labels"]["dev.addonstack.instance"] == slug
    assert compose["x-addonstack"]["instance"] == "My_Instance_123"
    assert instance_slug("tenant-42") == "tenant-42"
    assert instance_slug("A_b") != instance_slug("a-b")  # ids differing in punctuation never share a slug
    assert re.fullmatch(r"i-[0-9a-f]{8}", instance_slug("___"))
    # and the update path accepts the same id back
    u = update_addon_stack(
        {"instanceId": "My_Instance_123", "currentCompose": r.compose_override, "currentEnv": r.env_file}
    )
    assert u.metadata.unchanged == ["qdrant"]


def test_openclaw_version_and_ai_providers_are_accepted_and_recorded() -> None:
    r = gen(["qdrant"], openclawVersion="2026.1.5", aiProviders=["openai", "anthropic"])
    settings = yaml.safe_load(r.compose_override)["x-addonstack"]["settings"]
    assert settings["openclawVersion"] == "2026.1.5" and settings["aiProviders"] == ["openai", "anthropic"]


def test_unknown_service_is_a_skip_with_a_short_did_you_mean() -> None:
    r = gen(["qdrant", "n8m", "Not_A_Service"])
    assert r.metadata.resolved_services == ["qdrant"]
    skips = {s.service_id: s for s in r.metadata.skipped_services}
    assert skips["n8m"].reason == "unknown_service" and "did you mean 'n8n'" in skips["n8m"].details
    assert skips["Not_A_Service"].reason == "unknown_service"
    assert len(skips["Not_A_Service"].details) < 200  # never the list of every id


def test_control_characters_in_the_instance_id_are_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError) as exc:
        AddonStackInput.model_validate({"instanceId": "a\nb", "services": []})
    assert exc.value.errors()[0]["loc"] == ("instanceId",)


# ---- 2. result fields ------------------------------------------------------------------------------------


def test_generate_has_every_typescript_field() -> None:
    d = gen(["n8n", "ollama"], gpu=True).model_dump(by_alias=True, mode="json")
    for key in ("composeOverride", "envFile", "envVars", "skillFiles", "openclawConfigPatch", "proxyRoutes"):
        assert key in d
    assert d["additionalFiles"] == {}
    assert set(d["metadata"]) >= {
        "serviceCount",
        "skillCount",
        "estimatedMemoryMB",
        "resolvedServices",
        "skippedServices",
        "generatedSecretKeys",
        "portAssignments",
        "prePullImages",
    }
    pulls = d["metadata"]["prePullImages"]
    assert {p["serviceId"] for p in pulls} == {"n8n", "ollama"}
    assert pulls[0]["serviceId"] == "ollama" and pulls[0]["priority"] == 1  # the GPU image first
    for group in d["envVars"]:
        assert isinstance(group["serviceName"], str)
        for var in group["vars"]:
            assert {"key", "description", "value", "secret"} <= set(var)
    assert all(k.startswith("openclaw/workspace/skills/") and k.endswith("/SKILL.md") for k in d["skillFiles"])


def test_update_has_every_typescript_field() -> None:
    g = gen(["n8n", "qdrant"])
    u = update_addon_stack(
        {
            "instanceId": "t1",
            "currentCompose": g.compose_override,
            "currentEnv": g.env_file,
            "addServices": ["meilisearch"],
            "removeServices": ["qdrant"],
        },
        seed=2,
    )
    d = u.model_dump(by_alias=True, mode="json")
    assert list(d["newSkillFiles"]) == ["openclaw/workspace/skills/meilisearch-index/SKILL.md"]
    assert d["removedSkillSlugs"] == ["qdrant-memory"]
    assert [r["serviceId"] for r in d["addProxyRoutes"]] == ["meilisearch"]
    assert d["removeProxyRoutes"] == ["qdrant"]
    assert d["restartRequired"][0] == "meilisearch" and "openclaw-gateway" in d["restartRequired"]
    assert d["imagesToPull"] == [load_catalog().services["meilisearch"].image_ref]
    cat = load_catalog().services
    assert d["metadata"]["estimatedMemoryDelta"] == cat["meilisearch"].memory_mb - cat["qdrant"].memory_mb
    patch = d["openclawConfigPatch"]["skills"]
    assert patch["add"] == {"meilisearch-index": {"enabled": True}} and patch["remove"] == ["qdrant-memory"]


# ---- 5. skips --------------------------------------------------------------------------------------------


def test_dependencies_of_a_skipped_service_are_not_deployed() -> None:
    cat = load_catalog()
    # a service with a dependency and a required credential: skipped, so its dependency serves nobody
    svc = next(
        s
        for s in cat.addons()
        if s.requires and any(e.required for e in s.env) and not s.needs_build and s.gpu == "none"
    )
    r = gen([svc.id])
    assert r.metadata.resolved_services == [] and r.metadata.added_dependencies == []
    assert any("stack is empty" in w for w in r.warnings)


def test_generate_secrets_false_skips_with_missing_credentials() -> None:
    r = gen(["qdrant", "meilisearch"], generateSecrets=False)
    skip = next(s for s in r.metadata.skipped_services if s.service_id == "meilisearch")
    assert skip.reason == "missing_credentials" and skip.required_credentials == ["MEILI_MASTER_KEY"]
    assert "meilisearch" not in r.metadata.resolved_services
    supplied = gen(["meilisearch"], generateSecrets=False, credentials={"meilisearch": {"MEILI_MASTER_KEY": "k" * 32}})
    assert supplied.metadata.resolved_services == ["meilisearch"]
    assert "MEILISEARCH__MEILI_MASTER_KEY=" + "k" * 32 in supplied.env_file


# ---- 4. credentials --------------------------------------------------------------------------------------


def test_a_credential_for_an_alias_reaches_the_database_setup() -> None:
    r = gen(["n8n"], credentials={"n8n": {"DB_POSTGRESDB_PASSWORD": "chosen-pw-1"}})
    env = dict(line.split("=", 1) for line in r.env_file.splitlines() if "=" in line and not line.startswith("#"))
    assert env["N8N__N8N_DB_PASSWORD"] == "chosen-pw-1"  # the variable the setup step reads
    assert env["N8N__DB_POSTGRESDB_PASSWORD"] == "chosen-pw-1"
    setup = yaml.safe_load(r.compose_override)["services"]["postgres-setup"]["environment"]
    assert "${N8N__N8N_DB_PASSWORD}" in setup.values()


def test_a_credential_for_a_value_built_from_a_secret_names_the_source() -> None:
    cat = load_catalog()
    svc, var = next(
        (s, e)
        for s in cat.addons()
        for e in s.env
        if e.default
        and len(e.references()) >= 1
        and e.default != f"${{{e.references()[0][1]}}}"
        and any((src := s.env_var(k)) is not None and src.secret for _, k in e.references())
    )
    with pytest.raises(AddonStackError, match=rf"credentials\.{svc.id}\.{var.key}: .*supply credentials\.{svc.id}\."):
        gen([svc.id], credentials={svc.id: {var.key: "postgres://x"}})


# ---- 6. routes -------------------------------------------------------------------------------------------


def test_every_proxy_route_has_a_path_and_streams_get_their_own_helpers() -> None:
    r = gen(deployable(), gpu=True)
    d = r.model_dump(by_alias=True, mode="json")
    assert d["proxyRoutes"] and all(isinstance(x["path"], str) for x in d["proxyRoutes"])
    assert {s["protocol"] for s in d["streamRoutes"]} >= {"tcp"}
    tcp = next(s for s in r.stream_routes if s.protocol == "tcp")
    assert (
        traefik_stream_labels(tcp)[f"traefik.tcp.routers.addonstack-{tcp.service_id}-{tcp.port}.rule"] == "HostSNI(`*`)"
    )
    snippet = caddy_snippet(r.proxy_routes, r.stream_routes)
    assert "caddy-l4" in snippet and f"proxy {tcp.service_id}:{tcp.port}" in snippet


# ---- 7. gateway environment ------------------------------------------------------------------------------


def test_every_variable_a_skill_file_uses_is_in_the_gateway_env() -> None:
    r = gen(deployable(), gpu=True)
    assert len(r.skill_files) > 50
    for path, text in r.skill_files.items():
        for var in re.findall(r"\$\{?([A-Z][A-Z0-9_]+)", text):
            assert var in r.gateway_env, f"{path} uses ${var}, which the gateway does not get"
    assert r.gateway_env["N8N_HOST"] == "n8n"
    token = r.gateway_env["BROWSERLESS_TOKEN"]
    assert token and f"BROWSERLESS__TOKEN={token}" in r.env_file  # the service's own generated token


# ---- docs: the field map -----------------------------------------------------------------------------------

# Every field a platform reads or writes by name in @better-openclaw/core 1.0.26 (the reference page's
# "TypeScript field compatibility"), and the skip reasons it returns.
TYPESCRIPT_FIELDS = (
    # inputs
    "instanceId", "services", "skillPacks", "reservedPorts", "portOverrides", "generateSecrets", "credentials",
    "prebuiltImages", "platform", "gpu", "existingServices", "openclawVersion", "aiProviders",
    "currentCompose", "currentEnv", "addServices", "removeServices",
    # generate result
    "composeOverride", "envFile", "envVars", "serviceName", "key", "description", "value", "secret",
    "skillFiles", "openclawConfigPatch", "proxyRoutes", "additionalFiles", "serviceCount", "skillCount",
    "estimatedMemoryMB", "resolvedServices", "skippedServices", "generatedSecretKeys", "portAssignments",
    "prePullImages", "priority", "warnings", "serviceId", "reason", "requiredCredentials",
    # update result
    "newSkillFiles", "removedSkillSlugs", "addProxyRoutes", "removeProxyRoutes", "imagesToPull",
    "restartRequired", "added", "removed", "unchanged", "estimatedMemoryDelta",
    # skip reasons
    "missing_credentials", "gpu_required", "unknown_service", "no_image", "resolution_error",
)  # fmt: skip


def test_the_guide_for_platforms_coming_from_the_typescript_package_maps_every_field() -> None:
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "library.md").read_text()
    start = text.index("## Coming from @better-openclaw/core")
    section = text[start : text.index("\n## ", start + 1)]
    named = set(re.findall(r"`([^`]+)`", section))
    words = {w for n in named for w in re.findall(r"[A-Za-z_]+", n)}
    missing = [f for f in TYPESCRIPT_FIELDS if f not in words]
    assert not missing, f"docs/library.md 'Coming from @better-openclaw/core' does not map: {missing}"
    assert "### Migration" in section, "the guide says how files that package wrote are taken over"
