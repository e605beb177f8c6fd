"""The catalog admission rules (plan/validate.py), the webhook's collision rule, and `addonstack validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from addonstack.catalog.loader import load_catalog
from addonstack.cli.main import cli
from addonstack.controller.admission import child_names, collisions
from addonstack.plan.spec import INGRESS_RULES, AddonStackSpec, IngressRule
from addonstack.plan.validate import check_spec
from addonstack.render.stack import StackDefaults

ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = StackDefaults(database_host="pg.example", database_admin_secret="pg-admin")


def problems(spec: dict[str, Any]) -> list[str]:
    return check_spec(load_catalog(), AddonStackSpec.model_validate(spec))


@pytest.mark.parametrize("path", sorted((ROOT / "examples").glob("*.yaml")), ids=lambda p: p.name)
def test_examples_pass(path: Path) -> None:
    assert problems(yaml.safe_load(path.read_text())["spec"]) == []


@pytest.mark.parametrize(
    ("spec", "field", "fix"),
    [
        ({"services": ["nope"]}, "services: nope", "addonstack catalog list"),
        ({"services": ["qdrant", "qdrant"]}, "services: qdrant is listed twice", "list each service once"),
        ({"services": ["postgresql"]}, "services: postgresql is platform infrastructure", "spec.database"),
        ({"services": ["qdrant"], "skillPacks": ["nope"]}, "skillPacks: nope", "addonstack packs list"),
        ({"services": ["adguard-home", "pihole"]}, "services: adguard-home and pihole conflict", "keep only one"),
        ({"services": ["comfyui"], "gpu": False}, "gpu: comfyui needs an NVIDIA GPU", "set gpu: true"),
        (
            {"services": ["comfyui"], "platform": "linux/arm64"},
            "platform: comfyui is published for linux/amd64 only",
            "prebuiltImages.comfyui",
        ),
        ({"services": ["qdrant"], "prebuiltImages": {"zz": "r/x:1"}}, "prebuiltImages.zz", "catalog list"),
        ({"services": ["qdrant"], "prebuiltImages": {"n8n": "r/x:1"}}, "prebuiltImages.n8n", "add it to"),
        ({"services": ["qdrant"], "overrides": {"n8n": {}}}, "overrides.n8n: n8n is not part", "add it to"),
        ({"services": ["qdrant"], "overrides": {"qdrant": {"replicas": 2}}}, "overrides.qdrant.replicas", "use 1"),
        (
            {"services": ["browserless"], "overrides": {"browserless": {"storageSize": "1Gi"}}},
            "overrides.browserless.storageSize",
            "remove storageSize",
        ),
        (
            {"services": ["qdrant"], "prebuiltImages": {"qdrant": "r/q:1"}, "overrides": {"qdrant": {"imageTag": "2"}}},
            "overrides.qdrant.imageTag",
            "put the tag in prebuiltImages.qdrant",
        ),
    ],
)
def test_rule_names_field_and_fix(spec: dict[str, Any], field: str, fix: str) -> None:
    found = problems(spec)
    assert len(found) == 1, found
    assert found[0].startswith(field) and fix in found[0]


@pytest.mark.parametrize("rule", INGRESS_RULES, ids=lambda r: r.message.split(":")[0][:40])
def test_ingress_rules_are_the_crds_words(rule: IngressRule) -> None:
    """One rule set: the words the API server says (CEL in the CRD) are the words validate says."""
    crd = (ROOT / "crds" / "addonstack.dev_addonstacks.yaml").read_text()
    assert rule.message in crd and rule.cel in crd
    broken = {
        "ingress.tlsSecretName": {"tlsSecretName": "tls"},
        "ingress.perServiceHosts": {"perServiceHosts": True},
        "ingress.clusterIssuer": {"issuer": "ca"},
        "give": {"host": "a.example", "clusterIssuer": "le", "issuer": "ca"},
    }[rule.message.split(" ", 1)[0]]
    assert problems({"services": ["n8n"], "ingress": broken}) == [rule.message]
    fixed = {**broken, "host": "a.example"} if "host" not in broken else {"host": "a.example", "issuer": "ca"}
    assert problems({"services": ["n8n"], "ingress": fixed}) == []


def test_what_stays_a_status_matter() -> None:
    """Operator defaults, dependencies and missing images or credentials are skipped, not rejected."""
    assert problems({"services": ["comfyui"]}) == []  # gpu unset: the operator's default decides
    assert problems({"services": ["qdrant"], "overrides": {"qdrant": {"replicas": 1}}}) == []
    scalable = next(s.id for s in load_catalog().addons() if s.scalable)
    assert problems({"services": [scalable], "overrides": {scalable: {"replicas": 5}}}) == []
    build_only = next(s.id for s in load_catalog().addons() if s.needs_build)
    assert problems({"services": [build_only]}) == []


def test_override_for_a_dependency_is_allowed() -> None:
    cat = load_catalog()
    svc = next(s for s in cat.addons() if any(d in cat.services and not cat.services[d].platform_provided
                                               for d in s.requires))  # fmt: skip
    dep = next(d for d in svc.requires if d in cat.services and not cat.services[d].platform_provided)
    assert problems({"services": [svc.id], "overrides": {dep: {}}}) == []


def test_collisions_name_the_other_stack_and_the_fix() -> None:
    cat = load_catalog()
    mine = AddonStackSpec.model_validate({"services": ["qdrant", "searxng"]})
    others = [
        {"metadata": {"name": "first"}, "spec": {"services": ["qdrant"]}},
        {"metadata": {"name": "apart"}, "spec": {"services": ["grafana"]}},
        {"metadata": {"name": "broken"}, "spec": {"services": 7}},
        {"metadata": {"name": "me"}, "spec": {"services": ["qdrant"]}},
    ]
    found = collisions(cat, mine, "me", "ns", DEFAULTS, others)
    assert len(found) == 1
    assert "AddonStack 'first'" in found[0] and "Service/qdrant" in found[0] and "another namespace" in found[0]


def test_child_names_count_services_waiting_for_credentials() -> None:
    cat = load_catalog()
    svc = next(s for s in cat.addons() if any(e.credential and e.required for e in s.env) and not s.needs_build
               and s.gpu != "required" and "linux/amd64" in s.platforms
               and s.maturity != "experimental" and not s.docker_socket)  # fmt: skip
    names = child_names(cat, AddonStackSpec.model_validate({"services": [svc.id]}), "s", "ns", DEFAULTS)
    assert f"Secret/{svc.id}-env" in names


def test_cli_validate_prints_the_same_problems(tmp_path: Path) -> None:
    spec = {"services": ["adguard-home", "pihole", "qdrant"], "overrides": {"qdrant": {"replicas": 3}}}
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump({"apiVersion": "addonstack.dev/v1alpha1", "kind": "AddonStack",
                                    "metadata": {"name": "s"}, "spec": spec}))  # fmt: skip
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)])
    assert result.exit_code == 2  # bad input (cli/main.py: 2 bad input, 1 failure)
    text = " ".join(result.output.split())
    expected = problems(spec)
    assert len(expected) == 2
    for p in expected:
        assert p in text
    ok = CliRunner().invoke(cli, ["validate", "-f", str(ROOT / "examples" / "rag.yaml")])
    assert ok.exit_code == 0, ok.output
