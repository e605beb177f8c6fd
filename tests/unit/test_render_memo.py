"""The memoised Compose dump and skill rendering give exactly what the plain path gives."""

from __future__ import annotations

import pytest

from addonstack import generate_addon_stack, get_all_services
from addonstack.catalog.loader import load_catalog
from addonstack.render import yamlio
from addonstack.render.skills import _ENV, skill_files


def _deployable() -> list[str]:
    return [s.id for s in get_all_services() if not s.needs_build and s.gpu != "required" and not s.conflicts]


def test_sectioned_dump_is_byte_identical_over_the_catalog() -> None:
    result = generate_addon_stack({"instanceId": "memo", "services": _deployable()}, seed=3)
    doc = yamlio.load(result.compose_override)
    assert len(doc["services"]) > 100
    assert yamlio.dump_sectioned(doc, "services") == yamlio.dump(doc) == result.compose_override
    again = generate_addon_stack({"instanceId": "memo", "services": _deployable()}, seed=3)
    assert again.compose_override == result.compose_override  # second call served from the memo


def test_sectioned_dump_edge_cases() -> None:
    long_text = "a" * 70000 + " b" * 40000  # longer than the emitter's line width: folded the same way
    cases = [
        {"x-meta": {"k": 1}, "services": {"a": {"q": "multi\nline", "r": long_text, "e": [], "n": None}}, "v": {}},
        {"services": {}},
        {"services": {"only": []}, "networks": {"n": {"external": True}}},
        {"other": 1},
    ]
    for doc in cases:
        assert yamlio.dump_sectioned(doc, "services") == yamlio.dump(doc)


def test_a_changed_entry_is_not_served_stale() -> None:
    first = yamlio.dump_sectioned({"services": {"a": {"image": "x:1"}}}, "services")
    second = yamlio.dump_sectioned({"services": {"a": {"image": "x:2"}}}, "services")
    assert "x:1" in first and "x:2" in second and "x:1" not in second


def test_skill_files_match_a_fresh_render() -> None:
    skills = sorted(load_catalog().skills.values(), key=lambda s: s.id)[:8]
    assert len(skills) == 8
    template = _ENV.get_template("SKILL.md.j2")
    fresh = {f"{s.id}/SKILL.md": template.render(skill=s) for s in skills}
    assert skill_files(skills) == fresh
    assert skill_files(skills) == fresh  # second call from the memo


def test_load_fresh_returns_equal_new_objects_and_skips_non_json_documents() -> None:
    text = "a:\n  b: [1, 2.5, true, null, x]\n"
    first = yamlio.load_fresh(text)
    first["a"]["b"].append("changed")  # the caller owns what it gets
    second = yamlio.load_fresh(text)
    assert second == yamlio.load(text) == {"a": {"b": [1, 2.5, True, None, "x"]}}
    assert type(second["a"]["b"][2]) is bool and type(second["a"]["b"][1]) is float
    odd = "1: one\nwhen: 2024-01-02\n"  # an int key and a date: returned as YAML gives them
    assert yamlio.load_fresh(odd) == yamlio.load(odd)
    assert 1 in yamlio.load_fresh(odd)


def test_system_random_secrets_have_the_rule_length_and_alphabet_and_vary() -> None:
    from collections import Counter

    from addonstack.catalog.model import SecretRule
    from addonstack.plan.secrets import ALPHABETS, generate_secret, make_rng

    for alphabet in ("hex", "alnum", "base64url"):
        rule = SecretRule(alphabet=alphabet, length=40)
        drawn = [generate_secret(rule, make_rng(None)) for _ in range(300)]
        assert all(len(d) == 40 and set(d) <= set(ALPHABETS[alphabet]) for d in drawn)
        assert len(set(drawn)) == 300
        counts = Counter("".join(drawn))
        assert set(counts) == set(ALPHABETS[alphabet])  # every symbol reachable
        expected = 300 * 40 / len(ALPHABETS[alphabet])
        assert max(counts.values()) < 1.5 * expected and min(counts.values()) > 0.5 * expected
    seeded = SecretRule(alphabet="alnum", length=24)
    assert generate_secret(seeded, make_rng(7)) == generate_secret(seeded, make_rng(7))  # seeded path unchanged


def test_one_tenants_blocks_serve_the_next_with_its_own_instance_id() -> None:
    ids = _deployable()[:12]
    for instance in ("tenant-a", "tenant-b", "n8n", "123", "yes", "null", "0x1f", "1e3", "a" * 60):
        doc = {"x-meta": {"instance": instance},
               "services": {sid: {"image": "x:1", "labels": {"dev.addonstack.instance": instance,
                                                            "dev.addonstack.service": sid},
                                  "depends_on": {instance: {"condition": "service_started"}},
                                  "command": [instance, f"{instance}-suffix", "n8n"]}
                            for sid in ids}}  # fmt: skip
        assert yamlio.dump_sectioned(doc, "services", instance) == yamlio.dump(doc), instance
    for instance in ("tenant-a", "tenant-b"):
        result = generate_addon_stack({"instanceId": instance, "services": ids}, seed=3)
        assert result.compose_override == yamlio.dump(yamlio.load(result.compose_override))
        assert f"dev.addonstack.instance: {instance}" in result.compose_override


@pytest.mark.parametrize("text", ["12219860685053e10", "1e5", "-2E+3", ".5", "0o17", "1.5", "123", "yes"])
def test_strings_that_yaml_1_2_reads_as_numbers_are_quoted(text: str) -> None:
    """kubectl and Compose read YAML 1.2: an unquoted ``1e5`` there is a number (a config-hash made only of
    digits and one ``e`` was refused by the API server as 'expected string')."""
    line = yamlio.dump({"k": text}).strip()
    assert line in (f"k: '{text}'", f'k: "{text}"'), line
    assert yamlio.load(line) == {"k": text}


def test_numbers_and_ordinary_words_stay_plain() -> None:
    assert yamlio.dump({"a": 1.5e22, "b": 3, "c": "e10", "d": "v1.2.3"}) == "a: 1.5e+22\nb: 3\nc: e10\nd: v1.2.3\n"
