"""Registry mirrors and pull secrets (issue 20 point 4): every image of every catalog entry is pulled through
``imageRegistry`` in both render targets, every pod gets ``imagePullSecrets``, and a bad registry is refused in
the same words by the library, ``addonstack validate`` (check_spec) and the operator (plan_stack)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from addonstack import generate_addon_stack, update_addon_stack
from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.constants import POSTGRES_CLIENT_IMAGE
from addonstack.plan.build import PlanError
from addonstack.plan.images import mirror_image, registry_problem, unmirror_image
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.plan.validate import check_spec
from addonstack.render import yamlio
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.kubernetes.images import pod_specs
from addonstack.render.stack import StackDefaults, plan_stack

MIRROR = "mirror.example.com:5000/cache"


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


@pytest.mark.parametrize(
    ("ref", "want"),
    [
        ("redis:7", f"{MIRROR}/library/redis:7"),
        ("user/img:tag", f"{MIRROR}/user/img:tag"),
        ("docker.io/redis:7", f"{MIRROR}/library/redis:7"),
        ("docker.io/grafana/grafana:11.2.0", f"{MIRROR}/grafana/grafana:11.2.0"),
        ("index.docker.io/library/redis:7", f"{MIRROR}/library/redis:7"),
        ("ghcr.io/a/b:1", f"{MIRROR}/ghcr.io/a/b:1"),
        ("quay.io/x/y@sha256:" + "a" * 64, f"{MIRROR}/quay.io/x/y@sha256:" + "a" * 64),
        ("redis:7@sha256:" + "b" * 64, f"{MIRROR}/library/redis:7@sha256:" + "b" * 64),
        ("localhost:5000/app:1", f"{MIRROR}/localhost:5000/app:1"),
        (f"{MIRROR}/library/redis:7", f"{MIRROR}/library/redis:7"),  # idempotent
        ("addonstack-build/app:v1", "addonstack-build/app:v1"),  # built by Compose, never pulled
    ],
)
def test_mirror_rewrites_like_a_pull_through_cache(ref: str, want: str) -> None:
    assert mirror_image(ref, MIRROR) == want
    assert mirror_image(ref, None) == ref
    assert mirror_image(unmirror_image(want, MIRROR), MIRROR) == want


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("https://mirror.example.com", "drop https://"),
        ("Mirror.Example.com", "lower case"),
        ("mirror.example.com/", "ends with '/'"),
        ("mirror", "not a registry host"),
        ("mirror.example.com/a b", "not a registry address"),
    ],
)
def test_bad_registry_names_the_field_and_the_fix(value: str, words: str) -> None:
    problem = registry_problem(value)
    assert problem is not None and problem.startswith("imageRegistry: ") and words in problem
    assert "e.g. registry.example.com/mirror" in problem
    for good in ("mirror.example.com", "localhost:5000", "harbor.corp:8443/proxy/hub", "10.0.0.5:5000"):
        assert registry_problem(good) is None


def test_library_validate_and_operator_refuse_a_bad_registry_in_the_same_words(catalog: Catalog) -> None:
    expected = registry_problem("https://mirror.example.com")
    assert expected is not None
    with pytest.raises(ValidationError) as lib:
        generate_addon_stack({"instanceId": "t", "services": ["qdrant"], "imageRegistry": "https://mirror.example.com"})
    assert expected in str(lib.value)
    spec = AddonStackSpec.model_validate({"services": ["qdrant"], "imageRegistry": "https://mirror.example.com"})
    assert expected in check_spec(catalog, spec)
    with pytest.raises(PlanError) as op:
        plan_stack(catalog, spec, "s", "ns", StackDefaults(), make_rng(1))
    assert str(op.value) == expected


def _credentials(cat: Catalog, ids: list[str]) -> dict[str, str]:
    return {
        f"{sid}.{v.key}": f"user-{sid}-{v.key}".lower() for sid in ids for v in cat.services[sid].env if v.credential
    }


def _groups(cat: Catalog, ids: list[str]) -> list[list[str]]:
    """``ids`` in stacks without declared conflicts, so every entry is planned once."""
    remaining, groups = sorted(ids), []
    while remaining:
        group: list[str] = []
        for sid in remaining:
            if not any(sid in cat.services[o].conflicts or o in cat.services[sid].conflicts for o in group):
                group.append(sid)
        groups.append(group)
        remaining = [s for s in remaining if s not in group]
    return groups


def _containers(objs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    return [
        (f"{o['kind']}/{o['metadata']['name']}", pod, c)
        for o in objs
        for pod in pod_specs(o)
        for c in [*pod.get("initContainers", []), *pod["containers"]]
    ]


def test_kubernetes_every_image_of_every_entry_goes_through_the_mirror(catalog: Catalog) -> None:
    ids = sorted(s.id for s in catalog.addons() if not s.docker_socket)
    seen: set[str] = set()
    for group in _groups(catalog, ids):
        base = {
            "services": group,
            "prebuiltImages": {sid: f"ghcr.io/tenant/{sid}:1.0.0" for sid in group if not catalog.services[sid].image},
            "gpu": True,
            "allowExperimental": True,
            "database": {"host": "pg.platform", "adminSecretRef": {"name": "pg-admin"}},
        }
        rendered = {}
        for extra in ({}, {"imageRegistry": MIRROR, "imagePullSecrets": [{"name": "mirror-pull"}]}):
            spec = AddonStackSpec.model_validate({**base, **extra})
            planned = plan_stack(
                catalog, spec, "m", "ns", StackDefaults(), make_rng(3), _credentials(catalog, group)
            )
            plan, ctx = planned.plan, planned.context
            assert set(plan.ids) >= set(group), plan.skipped
            rendered[bool(extra)] = _containers(render_kubernetes(plan, ctx)[0])
        plain, mirrored = rendered[False], rendered[True]
        assert [w for w, _, _ in plain] == [w for w, _, _ in mirrored]
        for (where, _, before), (_, pod, after) in zip(plain, mirrored, strict=True):
            assert after["image"] == mirror_image(before["image"], MIRROR) != before["image"], where
            assert pod["imagePullSecrets"] == [{"name": "mirror-pull"}], where
        seen |= {w for w, _, _ in mirrored}
    assert any(POSTGRES_CLIENT_IMAGE in w or "db-setup" in w for w in seen)
    assert len(seen) >= len(ids)


def test_compose_and_pre_pull_images_use_the_mirror_for_every_entry(catalog: Catalog) -> None:
    ids = sorted(s.id for s in catalog.addons())
    covered: set[str] = set()
    for group in _groups(catalog, ids):
        r = generate_addon_stack(
            {
                "instanceId": "m",
                "services": group,
                "allowExperimental": True,
                "allowDockerSocket": True,
                "gpu": True,
                "credentials": {
                    sid: {e.key: "user-value" for e in catalog.services[sid].env if e.required} for sid in group
                },
                "prebuiltImages": {sid: f"ghcr.io/t/{sid}:1" for sid in group if catalog.services[sid].needs_build},
                "imageRegistry": MIRROR,
            },
            seed=1,
        )
        services = yamlio.load(r.compose_override)["services"]
        for sid, svc in services.items():
            assert svc["image"].startswith(f"{MIRROR}/"), (sid, svc["image"])
        assert all(i.image.startswith(f"{MIRROR}/") for i in r.metadata.pre_pull_images)
        assert {i.service_id for i in r.metadata.pre_pull_images} == set(r.metadata.resolved_services)
        covered |= set(r.metadata.resolved_services)
    assert covered == set(ids)


def test_operator_defaults_apply_and_the_spec_wins(catalog: Catalog) -> None:
    defaults = StackDefaults(image_registry="hub.corp.example", image_pull_secrets=("corp-pull",))
    for spec_extra, registry, secrets in [
        ({}, "hub.corp.example", [{"name": "corp-pull"}]),
        ({"imageRegistry": MIRROR, "imagePullSecrets": [{"name": "own"}]}, MIRROR, [{"name": "own"}]),
        ({"imagePullSecrets": []}, "hub.corp.example", None),
    ]:
        spec = AddonStackSpec.model_validate({"services": ["qdrant"], **spec_extra})
        planned = plan_stack(catalog, spec, "s", "ns", defaults, make_rng(1))
        plan, ctx, options = planned.plan, planned.context, planned.options
        (_, pod, c), *_ = _containers(render_kubernetes(plan, ctx)[0])
        assert c["image"].startswith(f"{registry}/") and options.image_registry == registry
        assert pod.get("imagePullSecrets") == secrets


def test_update_moves_kept_services_to_a_new_mirror_and_lists_them_to_pull() -> None:
    g = generate_addon_stack({"instanceId": "u", "services": ["qdrant"]}, seed=1)
    u = update_addon_stack(
        {"instanceId": "u", "currentCompose": g.compose_override, "currentEnv": g.env_file, "imageRegistry": MIRROR},
        seed=2,
    )
    image = yamlio.load(u.compose_override)["services"]["qdrant"]["image"]
    assert image == mirror_image(yamlio.load(g.compose_override)["services"]["qdrant"]["image"], MIRROR)
    assert u.images_to_pull == [image]
    again = update_addon_stack(
        {"instanceId": "u", "currentCompose": u.compose_override, "currentEnv": u.env_file}, seed=3
    )
    assert yamlio.load(again.compose_override)["services"]["qdrant"]["image"] == image  # kept in the state block
    assert again.images_to_pull == []
