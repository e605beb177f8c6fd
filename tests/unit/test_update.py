"""update_addon_stack: nothing that exists is lost, regenerated or moved."""

from __future__ import annotations

import re

import pytest

from addonstack import generate_addon_stack, update_addon_stack
from addonstack.api import AddonStackError
from addonstack.render import envfile, yamlio

WITH_DEP = "mautic"  # requires the mysql addon


def base(services: list[str] | None = None) -> object:
    return generate_addon_stack({"instanceId": "u1", "services": services or ["n8n", "qdrant"]}, seed=11)


def upd(prev: object, **kw: object) -> object:
    return update_addon_stack(
        {"instanceId": "u1", "currentCompose": prev.compose_override, "currentEnv": prev.env_file, **kw},
        seed=99,
    )


def values(text: str) -> dict[str, str]:
    return {k: v for s in envfile.parse(text).values.values() for k, v in s.items()}


def test_no_change_is_byte_identical() -> None:
    g = base()
    u = upd(g)
    assert u.compose_override == g.compose_override
    assert u.env_file == g.env_file
    assert u.images_to_pull == []
    assert u.metadata.unchanged == ["n8n", "qdrant"] and u.metadata.added == [] == u.metadata.removed


def test_user_edit_survives_and_nothing_rotates() -> None:
    g = base()
    edited = g.env_file.replace("N8N__GENERIC_TIMEZONE=UTC", "N8N__GENERIC_TIMEZONE='America/New_York'")
    assert edited != g.env_file
    u = update_addon_stack(
        {
            "instanceId": "u1",
            "currentCompose": g.compose_override,
            "currentEnv": edited,
            "addServices": ["meilisearch"],
        },
        seed=5,
    )
    after = values(u.env_file)
    assert after["N8N__GENERIC_TIMEZONE"] == "America/New_York"
    before = values(g.env_file)
    for k, v in before.items():
        if k != "N8N__GENERIC_TIMEZONE":
            assert after[k] == v, k
    assert u.metadata.added == ["meilisearch"]
    assert any("meilisearch" in i for i in u.images_to_pull)
    assert not any("n8n" in i for i in u.images_to_pull)


def test_ports_of_unchanged_services_do_not_move() -> None:
    g = generate_addon_stack({"instanceId": "u1", "services": ["n8n"], "reservedPorts": [5678]}, seed=1)
    assert g.metadata.port_assignments["n8n:5678"] == 6678
    u = upd(g, addServices=["qdrant"])  # 5678 is no longer reserved in this call
    assert u.metadata.port_assignments["n8n:5678"] == 6678


def test_remove_drops_section_and_service() -> None:
    g = base()
    u = upd(g, removeServices=["qdrant"])
    assert "qdrant" not in yamlio.load(u.compose_override)["services"]
    assert "addonstack:service=qdrant" not in u.env_file
    assert u.metadata.removed == ["qdrant"]


def test_removing_a_required_service_is_refused() -> None:
    g = generate_addon_stack({"instanceId": "u1", "services": [WITH_DEP]}, seed=1)
    required = [s for s in g.metadata.added_dependencies]
    if not required:
        pytest.fail(f"{WITH_DEP} is expected to pull in a dependency")
    u = upd(g, removeServices=[required[0]])
    assert required[0] in u.metadata.resolved_services
    assert any("still required" in w for w in u.warnings)


def test_removing_dependent_and_dependency_together_works() -> None:
    g = generate_addon_stack({"instanceId": "u1", "services": [WITH_DEP]}, seed=1)
    dep = g.metadata.added_dependencies[0]
    u = upd(g, removeServices=[WITH_DEP, dep])
    assert u.metadata.resolved_services == []


def _undefined(result: object) -> dict[str, list[str]]:
    """Per Compose service: the ${SERVICE__VAR} it reads that the env file does not define (the platform's own
    variables, such as POSTGRES_PASSWORD, come from the provider's environment)."""
    defined = set(values(result.env_file))
    out = {}
    for name, svc in (yamlio.load(result.compose_override)["services"] or {}).items():
        refs = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+__[A-Za-z0-9_]+)\}", yamlio.dump(svc)))
        if missing := sorted(refs - defined):
            out[name] = missing
    return out


@pytest.mark.parametrize(("services", "gone"), [(["chatwoot", "n8n"], {"chatwoot-worker", "chatwoot-init"}),
                                                 (["kong", "n8n"], {"kong-init"})])  # fmt: skip
def test_removing_a_service_takes_its_init_step_and_its_own_dependencies(services: list[str], gone: set[str]) -> None:
    """Found by the property test: chatwoot's migration step (chatwoot-init) and its worker, added only for it,
    were kept 'as added by hand' and read variables whose section had just been dropped."""
    g = base(services)
    assert gone <= set(yamlio.load(g.compose_override)["services"])
    u = upd(g, removeServices=[services[0]])
    left = set(yamlio.load(u.compose_override)["services"])
    assert not gone & left, left
    assert "n8n" in left and u.metadata.unchanged == ["n8n"]
    assert _undefined(u) == {}
    assert set(u.metadata.removed) == {services[0]} | ({"chatwoot-worker"} & gone)


@pytest.mark.parametrize(
    ("compose", "env", "match"),
    [
        ("services: {a: {image: x}}", None, "not produced by AddonStack"),
        ("{{{{", None, "not valid YAML"),
        (None, "FOO=bar\n", "not produced by AddonStack"),
        (None, "# addonstack:instance=u1\nFOO=bar\n", "before any"),
        (None, "# addonstack:instance=other\n", "belongs to instance"),
    ],
)
def test_foreign_or_broken_input_is_refused(compose: str | None, env: str | None, match: str) -> None:
    g = base()
    with pytest.raises(AddonStackError, match=match):
        update_addon_stack(
            {
                "instanceId": "u1",
                "currentCompose": compose or g.compose_override,
                "currentEnv": env or g.env_file,
            }
        )


def test_gpu_services_survive_update() -> None:
    from addonstack import get_all_services

    gpu = next(s.id for s in get_all_services() if s.gpu == "required" and not s.needs_build)
    g = generate_addon_stack({"instanceId": "u1", "services": [gpu], "gpu": True}, seed=2)
    u = upd(g, gpu=True, addServices=["qdrant"])
    assert gpu in u.metadata.resolved_services
    assert "deploy" in yamlio.load(u.compose_override)["services"][gpu]


def test_env_quoting_round_trips() -> None:
    tricky = [
        "simple",
        "with space",
        "quote'single",
        'dq"x',
        "dollar$HOME",
        "back\\slash",
        "multi\nline",
        "${NOT_A_REF}",
        "a #not comment",
        "",
    ]
    sections = [envfile.EnvSection("svc", "svc", [("", f"SVC__K{i}", v) for i, v in enumerate(tricky)])]
    text = envfile.render("x", "test", sections)
    parsed = envfile.parse(text)
    assert [parsed.values["svc"][f"SVC__K{i}"] for i in range(len(tricky))] == tricky


def test_keys_a_person_added_to_a_section_survive_update() -> None:
    g = base()
    marker = "# addonstack:service=qdrant\n"
    assert marker in g.env_file
    edited = g.env_file.replace(marker, marker + "QDRANT__MY_EXTRA='kept $value'\nTEAM_NOTE=ops\n")
    u = update_addon_stack(
        {"instanceId": "u1", "currentCompose": g.compose_override, "currentEnv": edited, "addServices": ["gotify"]},
        seed=3,
    )
    qdrant = envfile.parse(u.env_file).values["qdrant"]
    assert qdrant["QDRANT__MY_EXTRA"] == "kept $value" and qdrant["TEAM_NOTE"] == "ops"
    again = update_addon_stack({"instanceId": "u1", "currentCompose": u.compose_override, "currentEnv": u.env_file})
    assert again.env_file == u.env_file
    removed = update_addon_stack(
        {"instanceId": "u1", "currentCompose": u.compose_override, "currentEnv": u.env_file,
         "removeServices": ["qdrant"]}
    )  # fmt: skip
    assert "TEAM_NOTE" not in removed.env_file
