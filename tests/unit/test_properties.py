"""Property-based tests of the two ways in: the library input and the AddonStack spec.

Valid input (any mix of catalog services, packs, ports, credentials with hostile characters, platform and
GPU flags, overrides...) must always render output that is schema-valid: the Compose file against the
Compose specification's JSON Schema, every Kubernetes object against the strict schemas of
kubernetes-validate. Invalid input must always raise the library's validation error (pydantic's
``ValidationError`` or ``AddonStackError``/``PlanError``) with a message naming the field, never another
exception. How many inputs are tried is set by the Hypothesis profile (tests/hypothesis_setup.py) and
printed in the terminal summary.
"""

from __future__ import annotations

import functools
import json
import random
import re
import string
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from hypothesis import given, note
from hypothesis import strategies as st
from kubernetes_validate import utils as kv_utils
from kubernetes_validate import validate as kv_validate
from pydantic import ValidationError
from referencing import Registry, Resource

from addonstack.api import AddonStackError, generate_addon_stack, update_addon_stack
from addonstack.catalog.loader import load_catalog
from addonstack.catalog.model import ID_PATTERN
from addonstack.constants import INFRASTRUCTURE_IDS, PLATFORM_ENV_KEYS
from addonstack.plan.build import PlanError
from addonstack.plan.models import INSTANCE_PATTERN, AddonStackInput
from addonstack.plan.secrets import env_file_key
from addonstack.plan.spec import AddonStackSpec
from addonstack.render import envfile, yamlio
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.composeview import assert_compose_carries_every_value, compose_view
from tests.hypothesis_setup import tried
from tests.schemas import compose_errors, compose_refs

K8S_VERSION = "1.35.0"
CAT = load_catalog()
ADDONS = sorted(CAT.addons(), key=lambda s: s.id)
DEPLOYABLE = [s.id for s in ADDONS if not s.needs_build]
NEEDS_BUILD = [s.id for s in ADDONS if s.needs_build]
PLATFORM_IDS = sorted({*INFRASTRUCTURE_IDS, *(s.id for s in CAT.services.values() if s.platform_provided)})
PACKS = sorted(CAT.packs)
ALL_DEFAULT_HOST_PORTS = {p.default_host for s in CAT.services.values() for p in s.ports}
# Keys a credential sets directly: a value built from others (a URL around a password) is refused, and an
# alias (``${SOURCE}``) sets its source (tests/unit/test_library_contract.py covers both).
ENV_KEYS = {s.id: [e.key for e in s.env if not e.references()] for s in CAT.services.values()}

# ---- shared strategies -------------------------------------------------------------------------

NASTY = [
    "'",
    '"',
    "\\",
    "$",
    "$$",
    "${HOME}",
    "$(id)",
    "`id`",
    "a'b\"c\\d$e",
    "pa:ss;word",
    "line1\nline2",
    "cr\r\nlf",
    "tab\there",
    " leading and trailing ",
    "# not a comment",
    "x #y",
    "\\n",
    "'; DROP ROLE postgres; --",
    '"; DROP DATABASE x; --',
    ":'pw' :\"role\" :role",
    "\\gexec",
    "SQL\nSQL",
    "ünïcödé ✓ 密码",
    "\u2028\u2029\x85\x0b\x0c",
    "=",
    "{{ .Values }}",
    "%s%d",
]
# Any text an environment variable can hold: no NUL, no lone surrogates (not encodable).
ENV_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=40)
SECRET_TEXT = st.one_of(st.sampled_from(NASTY), ENV_TEXT, st.text(string.printable, min_size=1, max_size=30))

unknown_ids = st.from_regex(ID_PATTERN, fullmatch=True).filter(lambda s: s not in CAT.services and s not in PACKS)
service_ids = st.one_of(
    st.sampled_from(DEPLOYABLE),
    st.sampled_from(DEPLOYABLE),
    st.sampled_from(DEPLOYABLE),
    st.sampled_from(NEEDS_BUILD),
    st.sampled_from(PLATFORM_IDS),
    unknown_ids,
)
pack_ids = st.one_of(st.sampled_from(PACKS), unknown_ids)
image_tags = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}", fullmatch=True)
dns_labels = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?", fullmatch=True)
instance_ids = st.from_regex(INSTANCE_PATTERN, fullmatch=True)
quantities = st.from_regex(r"[0-9]{1,4}(\.[0-9]{1,3})?(m|Ki|Mi|Gi|Ti|k|M|G|T)?", fullmatch=True)
label_names = st.from_regex(r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,20}[A-Za-z0-9])?", fullmatch=True)
label_keys = st.one_of(label_names, st.builds(lambda p, n: f"{p}/{n}", dns_labels, label_names))
label_values = st.one_of(st.just(""), label_names)
JSON_GARBAGE = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=6,
)


def _stack_credentials(draw: st.DrawFn, services: list[str]) -> dict[str, dict[str, str]]:
    known = [s for s in dict.fromkeys(services) if ENV_KEYS.get(s)]
    creds: dict[str, dict[str, str]] = {}
    if known:
        for sid in draw(st.lists(st.sampled_from(known), unique=True, max_size=3)):
            creds[sid] = draw(st.dictionaries(st.sampled_from(ENV_KEYS[sid]), SECRET_TEXT, max_size=3))
    return creds


def _prebuilt(draw: st.DrawFn, services: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for sid in services:
        if sid in NEEDS_BUILD and draw(st.booleans()):
            out[sid] = f"registry.example.com/team/{sid}:{draw(image_tags)}"
    if draw(st.booleans()):
        out[draw(unknown_ids)] = "registry.example.com/other:1.0"
    return out


@st.composite
def library_inputs(draw: st.DrawFn) -> dict[str, Any]:
    """A valid generate request (camelCase, as platforms send it)."""
    services = draw(st.lists(service_ids, max_size=6))
    reserved = draw(st.lists(st.integers(1, 65535), max_size=8))
    overrides: dict[str, dict[str, int]] = {}
    free = st.integers(40000, 65535).filter(lambda p: p not in ALL_DEFAULT_HOST_PORTS and p not in reserved)
    used: set[int] = set()
    for sid in dict.fromkeys(services):
        svc = CAT.services.get(sid)
        exposed = [p for p in svc.ports if p.exposed] if svc else []
        if exposed and draw(st.booleans()):
            port = draw(st.sampled_from(exposed))
            host = draw(free.filter(lambda p: p not in used))
            used.add(host)
            overrides[sid] = {str(port.default_host): host}
    inp: dict[str, Any] = {"instanceId": draw(instance_ids), "services": services}
    optional: dict[str, Any] = {
        "skillPacks": draw(st.lists(pack_ids, max_size=3)),
        "reservedPorts": reserved,
        "portOverrides": overrides,
        "generateSecrets": draw(st.booleans()),
        "credentials": _stack_credentials(draw, services),
        "prebuiltImages": _prebuilt(draw, services),
        "platform": draw(st.sampled_from(["linux/amd64", "linux/arm64"])),
        "gpu": draw(st.booleans()),
        "existingServices": draw(st.lists(st.sampled_from(DEPLOYABLE), max_size=3)),
    }
    for key, value in optional.items():
        if key in ("reservedPorts", "portOverrides") or draw(st.booleans()):
            inp[key] = value
    return inp


# ---- validators built once ------------------------------------------------------------------------


@functools.cache
def _k8s_validator(api_version: str, kind: str) -> Any:
    """kubernetes-validate's strict schema for a kind, as a reusable validator (same files, same draft)."""
    version = [v for v in kv_utils.all_versions() if kv_utils.major_minor(v) <= kv_utils.major_minor(K8S_VERSION)][-1]
    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    group = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    schema = kv_utils.schema_contents(f"{schema_dir}/{kind.lower()}-{group}.json", K8S_VERSION)
    defs = kv_utils.schema_contents(f"{schema_dir}/_definitions.json", K8S_VERSION)
    registry: Registry[Any] = Resource.from_contents(defs) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_official_checks = [0]


# Custom resources we render, which kubernetes-validate has no schema for: checked for shape only.
CUSTOM_KINDS = {("traefik.io/v1alpha1", "Middleware")}


def assert_k8s_valid(objs: list[dict[str, Any]]) -> None:
    """Every object is valid for the strict 1.35 schemas; names and label values as the API server wants."""
    for obj in objs:
        if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
            assert isinstance(obj.get("spec"), dict) and DNS_SUBDOMAIN.match(obj["metadata"]["name"])
            continue
        errors = [
            f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
            for e in _k8s_validator(obj["apiVersion"], obj["kind"]).iter_errors(obj)
        ]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert errors == [], f"{where}: {errors}"
        name = obj["metadata"]["name"]
        if obj["kind"] in ("Service", "Deployment", "StatefulSet"):
            assert DNS_LABEL.match(name) and len(name) <= 63, f"{where}: not a DNS label"
        else:
            assert DNS_SUBDOMAIN.match(name) and len(name) <= 253, f"{where}: not a DNS subdomain"
        for key, value in obj["metadata"].get("labels", {}).items():
            assert LABEL_VALUE.match(value) and len(value) <= 63, f"{where}: label {key}={value!r}"
        for rule in (obj.get("spec") or {}).get("rules", []) if obj["kind"] == "Ingress" else []:
            host = rule.get("host")
            assert host is None or DNS_SUBDOMAIN.match(host.removeprefix("*.")), f"{where}: host {host!r}"
    # The official entry point on a sample, so the cached validators cannot drift from it.
    _official_checks[0] += 1
    if objs and _official_checks[0] % 50 == 1:
        for obj in objs[:: max(1, len(objs) // 4)]:
            if (obj["apiVersion"], obj["kind"]) not in CUSTOM_KINDS:
                kv_validate(obj, K8S_VERSION, strict=True)


def _env(text: str) -> dict[str, str]:
    parsed = envfile.parse(text)
    return {k: v for section in parsed.values.values() for k, v in section.items()}


def assert_compose_valid(result: Any, inp: dict[str, Any]) -> None:
    doc = yamlio.load(result.compose_override)
    assert compose_errors(doc) == []
    env = _env(result.env_file)
    missing = compose_refs(result.compose_override) - set(env) - PLATFORM_ENV_KEYS
    assert not missing, f"referenced but not defined: {sorted(missing)}"
    for group in result.env_vars:
        for var in group.vars:
            if var.env_key:
                assert env[var.env_key] == var.value, f"{var.env_key} does not read back"
            if var.generated and var.secret:
                assert var.value not in result.compose_override, f"{group.service_id}.{var.key} leaked"
    resolved = set(result.metadata.resolved_services)
    for sid, values in (inp.get("credentials") or {}).items():
        for key, value in values.items():
            if sid in resolved:
                assert env[env_file_key(sid, key)] == value, f"credentials.{sid}.{key} did not reach the env file"


# ---- valid input renders valid output --------------------------------------------------------------


_compose_loads = [0]


@given(inp=library_inputs(), seed=st.integers(0, 2**32))
def test_valid_library_input_renders_schema_valid_compose(composecheck: Path, inp: dict[str, Any], seed: int) -> None:
    tried()
    result = generate_addon_stack(inp, seed=seed, catalog=CAT)
    assert_compose_valid(result, inp)
    # One input in ten also goes through Docker Compose's own loader: it must load, interpolate, and give
    # every container exactly the values we stored.
    _compose_loads[0] += 1
    if _compose_loads[0] % 10 == 1:
        with tempfile.TemporaryDirectory() as workdir:
            view = compose_view(composecheck, result, Path(workdir), {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})
        assert_compose_carries_every_value(result, view)


@given(inp=library_inputs(), seed=st.integers(0, 2**32), add=st.lists(service_ids, max_size=2), data=st.data())
def test_update_keeps_every_value_and_port(inp: dict[str, Any], seed: int, add: list[str], data: Any) -> None:
    tried()
    first = generate_addon_stack(inp, seed=seed, catalog=CAT)
    remove = (
        data.draw(st.lists(st.sampled_from(first.metadata.resolved_services), max_size=2))
        if (first.metadata.resolved_services)
        else []
    )
    change = {
        **{k: v for k, v in inp.items() if k != "services"},
        "currentCompose": first.compose_override,
        "currentEnv": first.env_file,
        "addServices": add,
        "removeServices": remove,
    }
    second = update_addon_stack(change, seed=seed + 1, catalog=CAT)
    assert_compose_valid(second, {})
    before, after = _env(first.env_file), _env(second.env_file)
    kept = set(second.metadata.unchanged)
    for key, value in before.items():
        sid = key.split("__", 1)[0]
        if any(env_file_key(s, "") == sid + "__" for s in kept):
            assert after.get(key) == value, f"{key} changed on update"
    for key, port in first.metadata.port_assignments.items():
        if key.split(":", 1)[0] in kept:
            assert second.metadata.port_assignments[key] == port, f"{key} moved on update"


@st.composite
def stack_specs(draw: st.DrawFn) -> tuple[dict[str, Any], str, str, dict[str, str], StackDefaults]:
    """(spec, name, namespace, credentials Secret data, operator defaults) of a valid AddonStack."""
    services = draw(st.lists(service_ids, max_size=6))
    spec: dict[str, Any] = {"services": services}
    present = [s for s in dict.fromkeys(services) if s in CAT.services]
    overrides: dict[str, Any] = {}
    for sid in draw(st.lists(st.sampled_from(present), unique=True, max_size=3)) if present else []:
        ov: dict[str, Any] = {}
        if draw(st.booleans()):
            ov["imageTag"] = draw(image_tags)
        if draw(st.booleans()):
            ov["replicas"] = draw(st.integers(0, 20))
        if draw(st.booleans()):
            ov["resources"] = {
                part: {k: draw(quantities) for k in draw(st.sets(st.sampled_from(["cpu", "memory"])))}
                for part in draw(st.sets(st.sampled_from(["requests", "limits"])))
            }
        if draw(st.booleans()):
            ov["storageSize"] = draw(quantities)
        overrides[sid] = ov
    peer = st.fixed_dictionaries(
        {}, optional={"namespace": dns_labels, "podLabels": st.dictionaries(label_keys, label_values, max_size=2)}
    )
    host = st.builds(
        lambda w, h: w + h,
        st.sampled_from(["", "*."]),
        st.from_regex(r"[a-z0-9]([-a-z0-9]{0,8}[a-z0-9])?(\.[a-z0-9]{1,8}){0,2}", fullmatch=True),
    )
    optional: dict[str, Any] = {
        "skillPacks": st.lists(pack_ids, max_size=3),
        "credentialsSecretRef": st.fixed_dictionaries({"name": dns_labels}),
        "prebuiltImages": st.just(_prebuilt(draw, services)),
        "overrides": st.just(overrides),
        "ingress": st.fixed_dictionaries(
            {},
            optional={
                "enabled": st.booleans(),
                "className": st.sampled_from(["nginx", "traefik", "haproxy"]) | dns_labels,
                "host": host,
                "tlsSecretName": dns_labels,
                "pathPrefix": st.from_regex(r"/[a-z0-9/_-]{0,20}", fullmatch=True),
                "perServiceHosts": st.booleans(),
            },
        ),
        "gpu": st.booleans(),
        "platform": st.sampled_from(["linux/amd64", "linux/arm64"]),
        "database": st.fixed_dictionaries(
            {},
            optional={
                "host": st.sampled_from(["db.example.com", "10.0.0.5", "fd00::5", "pg"]) | dns_labels,
                "port": st.integers(1, 65535),
                "adminSecretRef": st.fixed_dictionaries({"name": dns_labels}),
            },
        ),
        "redis": st.fixed_dictionaries(
            {},
            optional={
                "host": st.sampled_from(["redis.example.com", "10.0.0.6"]) | dns_labels,
                "port": st.integers(1, 65535),
                "passwordSecretRef": st.fixed_dictionaries({"name": dns_labels, "key": label_names}),
            },
        ),
        "networkPolicy": st.fixed_dictionaries(
            {}, optional={"enabled": st.booleans(), "ingressController": peer, "gateway": peer}
        ),
        "deletionPolicy": st.sampled_from(["Retain", "Delete"]),
    }
    for key, strategy in optional.items():
        if draw(st.booleans()):
            spec[key] = draw(strategy)
    cred_data: dict[str, str] = {}
    for sid, values in _stack_credentials(draw, services).items():
        cred_data.update({f"{sid}.{k}": v for k, v in values.items()})
    if draw(st.booleans()):
        cred_data[draw(st.from_regex(r"[A-Za-z_][A-Za-z0-9_.]{0,12}", fullmatch=True))] = draw(SECRET_TEXT)
    defaults = StackDefaults(
        database_admin_secret=draw(st.sampled_from([None, "pg-admin"])),
        ingress_enabled=draw(st.booleans()),
        ingress_class=draw(st.sampled_from([None, "nginx"])),
    )
    return spec, draw(dns_labels), draw(dns_labels), cred_data, defaults


@given(case=stack_specs(), seed=st.integers(0, 2**32))
def test_valid_spec_renders_schema_valid_kubernetes(
    case: tuple[dict[str, Any], str, str, dict[str, str], StackDefaults], seed: int
) -> None:
    tried()
    raw, name, ns, cred_data, defaults = case
    spec = AddonStackSpec.model_validate(json.loads(json.dumps(raw)))
    planned = plan_stack(CAT, spec, name, ns, defaults, random.Random(seed), cred_data)
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    note(f"{len(objs)} objects")
    assert_k8s_valid(objs)
    assert all(o["metadata"]["namespace"] == ns for o in objs)


# ---- invalid input is answered with a validation error naming the field ------------------------------

Mutation = Callable[[st.DrawFn, dict[str, Any]], str]


def _not(*types: type) -> st.SearchStrategy[Any]:
    return JSON_GARBAGE.filter(lambda v: not isinstance(v, types))


BAD_IDS = st.one_of(
    st.sampled_from(["", "N8N", "n8n ", "-n8n", "n8n-", "n8n_x", "a" * 41, "n8n;drop", "../x", "n8n\n", "ü"]),
    st.text(max_size=12).filter(lambda s: re.fullmatch(ID_PATTERN, s) is None),
)
# Requested ids (services, skillPacks) are any text up to 100 characters: an unknown one is a skip.
BAD_REQUESTED = st.sampled_from(["", "a" * 101])
BAD_BOOL = st.one_of(
    st.sampled_from(["maybe", 2, -1, 0.5, "", "tru"]),
    _not(bool, int, float, str),
)
BAD_PORTS = st.one_of(
    st.integers(max_value=0),
    st.integers(min_value=65536),
    st.sampled_from([1.5, "http", "", None, [], {}, "80.5"]),
)


def _mutations() -> dict[str, tuple[str, Any]]:
    """field -> (name that must appear in the message, strategy of a bad value for it)."""
    return {
        "instanceId": (
            "instanceId",
            st.one_of(
                # Any printable text is an id, as in @better-openclaw/core; names use its slug.
                st.sampled_from(["", "a\n", "\x00", "t\t1", "a" * 254]),
                _not(str),
            ),
        ),
        "services": (
            "services",
            st.one_of(
                _not(list),
                st.lists(BAD_REQUESTED, min_size=1, max_size=3),
                st.lists(_not(str), min_size=1, max_size=2),
            ),
        ),
        "skillPacks": ("skillPacks", st.one_of(_not(list), st.lists(BAD_REQUESTED, min_size=1, max_size=2))),
        "reservedPorts": ("reservedPorts", st.one_of(_not(list), st.lists(BAD_PORTS, min_size=1, max_size=3))),
        "portOverrides": (
            "portOverrides",
            st.one_of(
                _not(dict),
                st.builds(lambda p: {"n8n": {"5678": p}}, BAD_PORTS),
                st.builds(lambda k: {"n8n": {k: 7000}}, st.sampled_from(["http", "0", "65536", "-1", "", "5678a"])),
                st.builds(lambda s: {s: {"80": 8080}}, BAD_IDS),
                st.builds(lambda: {"n8n": {"5678": 9999}, "_reserved": True}),
            ),
        ),
        "generateSecrets": ("generateSecrets", BAD_BOOL),
        "gpu": ("gpu", BAD_BOOL),
        "platform": ("platform", st.one_of(st.sampled_from(["amd64", "linux/386", "windows/amd64", ""]), _not(str))),
        "credentials": (
            "credentials",
            st.one_of(
                _not(dict),
                st.builds(lambda s: {s: {"X": "1"}}, BAD_IDS),
                st.builds(lambda s: {s: {"PASSWORD": "1"}}, unknown_ids),
                st.builds(lambda k: {"n8n": {k: "1"}}, st.sampled_from(["NOT_A_VAR", "lower_unknown"])),
                st.builds(lambda k: {"n8n": {k: "1"}}, st.sampled_from(["1BAD", "BAD-KEY", "BAD KEY", ""])),
                st.builds(lambda v: {"n8n": {"GENERIC_TIMEZONE": v}}, _not(str)),
                st.builds(lambda v: {"n8n": {"GENERIC_TIMEZONE": v}}, st.sampled_from(["a\x00b", "\x00", "\ud800"])),
            ),
        ),
        "prebuiltImages": (
            "prebuiltImages",
            st.one_of(
                _not(dict),
                st.builds(
                    lambda r: {"n8n": r},
                    st.sampled_from(
                        ["", "has space:1", "-bad", "x:", "x/", "a" * 513, "x:${TAG}", "r/x:$HOME", "x:1\n"]
                    ),
                ),
                st.builds(lambda s: {s: "img:1"}, BAD_IDS),
            ),
        ),
        "existingServices": ("existingServices", st.one_of(_not(list), st.lists(BAD_IDS, min_size=1, max_size=2))),
    }


MUTATIONS = _mutations()


@st.composite
def invalid_library_inputs(draw: st.DrawFn) -> tuple[Any, str]:
    """(input, field the error must name): a valid input with one field made wrong."""
    inp = draw(library_inputs())
    kind = draw(st.sampled_from([*MUTATIONS, "unknownField", "notAnObject"]))
    if kind == "notAnObject":
        return draw(_not(dict)), ""
    if kind == "unknownField":
        field = draw(
            st.from_regex(r"[a-zA-Z][a-zA-Z0-9]{0,15}", fullmatch=True).filter(
                lambda f: (
                    f not in AddonStackInput.model_fields
                    and f not in {fi.alias for fi in AddonStackInput.model_fields.values()}
                )
            )
        )
        inp[field] = draw(JSON_GARBAGE)
        return inp, field
    name, strategy = MUTATIONS[kind]
    value = draw(strategy)
    if kind == "portOverrides" and isinstance(value, dict) and value.pop("_reserved", False):
        inp["reservedPorts"] = [9999]
    inp[kind] = value
    return inp, name


def _assert_names_field(exc: Exception, field: str) -> None:
    message = str(exc)
    assert field in message, f"the error does not name {field!r}: {message}"


@given(case=invalid_library_inputs(), seed=st.integers(0, 2**16))
def test_invalid_library_input_is_a_validation_error_naming_the_field(case: tuple[Any, str], seed: int) -> None:
    tried()
    inp, field = case
    with pytest.raises((ValidationError, AddonStackError)) as info:
        generate_addon_stack(inp, seed=seed, catalog=CAT)
    _assert_names_field(info.value, field)


@st.composite
def invalid_updates(draw: st.DrawFn) -> tuple[dict[str, Any], str]:
    """An update whose currentCompose or currentEnv is broken, hand-edited badly, or someone else's."""
    inp = draw(library_inputs())
    first = generate_addon_stack(inp, seed=1, catalog=CAT)
    change: dict[str, Any] = {
        "instanceId": inp["instanceId"],
        "currentCompose": first.compose_override,
        "currentEnv": first.env_file,
    }
    doc = yamlio.load(first.compose_override)
    kind = draw(st.sampled_from(["compose-text", "compose-shape", "marker", "env-text", "other-instance"]))
    if kind == "compose-text":
        change["currentCompose"] = draw(st.text(max_size=60) | st.sampled_from(["{", "a: [", "- x\n- y", "42", ""]))
        return change, "currentCompose"
    if kind == "compose-shape":
        if doc["services"] and draw(st.booleans()):
            sid = draw(st.sampled_from(sorted(doc["services"])))
            if draw(st.booleans()):
                doc["services"][sid] = draw(_not(dict))
            else:
                doc["services"][sid][draw(st.sampled_from(["ports", "image"]))] = draw(_not(list, str))
        else:
            doc["services"] = draw(_not(dict, type(None)))
        change["currentCompose"] = yamlio.dump(doc)
        return change, "currentCompose"
    if kind == "marker":
        field = draw(st.sampled_from(["requested", "services", "skillPacks"]))
        doc["x-addonstack"][field] = draw(_not(list) | st.lists(_not(str), min_size=1, max_size=2))
        change["currentCompose"] = yamlio.dump(doc)
        return change, "currentCompose"
    if kind == "env-text":
        other = "y" if inp["instanceId"] == "x" else "x"  # "" after the header of the stack's own id would be valid
        change["currentEnv"] = draw(
            st.text(max_size=60).filter(lambda t: envfile.HEADER not in t)
            | st.sampled_from(["KEY='unterminated", "not a line", ""]).map(lambda t: f"{envfile.HEADER}{other}\n" + t)
        )
        return change, "currentEnv"
    change["instanceId"] = draw(instance_ids.filter(lambda i: i != inp["instanceId"]))
    return change, "current"


@given(case=invalid_updates())
def test_invalid_update_is_a_validation_error_naming_the_field(case: tuple[dict[str, Any], str]) -> None:
    tried()
    change, field = case
    with pytest.raises(AddonStackError) as info:
        update_addon_stack(change, seed=3, catalog=CAT)
    _assert_names_field(info.value, field)


SPEC_MUTATIONS: dict[str, tuple[str, st.SearchStrategy[Any]]] = {
    "services": ("services", st.one_of(_not(list), st.lists(BAD_IDS, min_size=1, max_size=2), st.just(["n8n"] * 251))),
    "skillPacks": ("skillPacks", st.one_of(_not(list, type(None)), st.lists(BAD_IDS, min_size=1, max_size=2))),
    "credentialsSecretRef": (
        "credentialsSecretRef",
        st.one_of(
            _not(dict, type(None)),
            st.sampled_from([{"name": "Bad_Name"}, {"name": ""}, {}, {"name": "ok", "key": "x"}, {"name": "a" * 254}]),
        ),
    ),
    "prebuiltImages": ("prebuiltImages", st.one_of(_not(dict, type(None)), st.builds(lambda s: {s: "img:1"}, BAD_IDS))),
    "overrides": (
        "overrides",
        st.one_of(
            _not(dict, type(None)),
            st.builds(lambda s: {s: {}}, BAD_IDS),
            st.builds(
                lambda r: {"n8n": {"replicas": r}},
                st.integers(max_value=-1) | st.integers(min_value=21) | st.sampled_from(["two", 1.5, [], {}]),
            ),
            st.builds(lambda t: {"n8n": {"imageTag": t}}, st.sampled_from(["", "a b", ":1", "-x", "x" * 129, "ü"])),
            st.builds(
                lambda q: {"n8n": {"resources": {"limits": {"memory": q}}}},
                st.sampled_from(["", "1.5.5", "-1", "lots", "1Gb", "1e3", "0x10", 5]),
            ),
            st.builds(lambda q: {"n8n": {"storageSize": q}}, st.sampled_from(["10 Gi", "ten", ".5Gi"])),
            st.builds(lambda f: {"n8n": {f: 1}}, st.sampled_from(["image", "env", "replica", "storage"])),
            st.just({"n8n": {"resources": {"limits": {"gpu": "1"}}}}),
        ),
    ),
    "ingress": (
        "ingress",
        st.one_of(
            _not(dict, type(None)),
            st.builds(lambda h: {"host": h}, st.sampled_from(["Example.com", "a..b", "-a.com", "a_b.com", "*", "a b"])),
            st.builds(lambda p: {"pathPrefix": p}, st.sampled_from(["addons", "/Addons", "/a b", "/a?b", "//x" * 40])),
            st.builds(lambda c: {"className": c}, st.sampled_from(["Nginx", "", "a_b"])),
            st.just({"tls": True}),
        ),
    ),
    "gpu": ("gpu", BAD_BOOL.filter(lambda v: v is not None)),  # every spec field may be null
    "platform": ("platform", st.sampled_from(["amd64", "linux/386", "", 3])),
    "database": (
        "database",
        st.one_of(
            _not(dict, type(None)),
            st.builds(lambda p: {"port": p}, BAD_PORTS.filter(lambda p: p is not None)),
            st.sampled_from([{"host": ""}, {"adminSecretRef": {"name": "Bad"}}, {"user": "x"}]),
        ),
    ),
    "redis": (
        "redis",
        st.one_of(
            _not(dict, type(None)),
            st.builds(lambda p: {"port": p}, BAD_PORTS.filter(lambda p: p is not None)),
            st.sampled_from([{"passwordSecretRef": {"name": "x"}}, {"passwordSecretRef": {"name": "x", "key": "a b"}}]),
        ),
    ),
    "networkPolicy": (
        "networkPolicy",
        st.one_of(
            _not(dict, type(None)),
            st.sampled_from(
                [
                    {"enabled": "maybe"},
                    {"gateway": {"namespace": "Bad_NS"}},
                    {"gateway": {"labels": {}}},
                    {"ingressController": {"podLabels": {"a": "x" * 64}}},
                ]
            ),
        ),
    ),
    "deletionPolicy": ("deletionPolicy", st.sampled_from(["retain", "delete", "Orphan", "", 1, True])),
}


@st.composite
def invalid_specs(draw: st.DrawFn) -> tuple[Any, str]:
    spec = draw(stack_specs())[0]
    kind = draw(st.sampled_from([*SPEC_MUTATIONS, "unknownField", "notAnObject"]))
    if kind == "notAnObject":
        return draw(_not(dict)), ""
    if kind == "unknownField":
        known = set(AddonStackSpec.model_fields) | {f.alias for f in AddonStackSpec.model_fields.values()}
        field = draw(st.from_regex(r"[a-zA-Z][a-zA-Z0-9]{0,15}", fullmatch=True).filter(lambda f: f not in known))
        spec[field] = draw(JSON_GARBAGE)
        return spec, field
    name, strategy = SPEC_MUTATIONS[kind]
    spec[kind] = draw(strategy)
    return spec, name


@given(case=invalid_specs())
def test_invalid_spec_is_a_validation_error_naming_the_field(case: tuple[Any, str]) -> None:
    tried()
    raw, field = case
    with pytest.raises((ValidationError, PlanError)) as info:
        spec = AddonStackSpec.model_validate(raw)
        plan_stack(CAT, spec, "stack", "ns", StackDefaults(), random.Random(0))
    _assert_names_field(info.value, field)


@given(
    services=st.lists(
        st.sampled_from([s.id for s in ADDONS if s.postgres and not s.needs_build]), min_size=1, max_size=4
    ),
    name=dns_labels,
    instance=instance_ids,
    creds=st.dictionaries(
        st.sampled_from(["n8n.N8N_DB_PASSWORD", "N8N_DB_PASSWORD", "n8n.DB_POSTGRESDB_USER"]), SECRET_TEXT, max_size=3
    ),
)
def test_database_names_come_only_from_the_catalog(
    services: list[str], name: str, instance: str, creds: dict[str, str]
) -> None:
    """Stack name, instance id and credentials never reach the SQL script; only catalog names do."""
    tried()
    from addonstack.plan.databases import setup_script

    spec = AddonStackSpec.model_validate({"services": services})
    plan = plan_stack(CAT, spec, name, "ns", StackDefaults(), random.Random(0), creds).plan
    baseline = plan_stack(CAT, spec, "base", "other", StackDefaults(), random.Random(1)).plan
    script = setup_script(plan.databases)
    assert script == setup_script(baseline.databases), "the SQL script depends on user input"
    allowed = {n for s in CAT.services.values() if s.postgres for n in (s.postgres.database, s.postgres.role)}
    for var, value in re.findall(r"-v (db|role)=(\S+)", script):
        assert value in allowed, f"{var}={value} is not a catalog name"
    lib = generate_addon_stack({"instanceId": instance, "services": services}, seed=0, catalog=CAT)
    setup = yamlio.load(lib.compose_override)["services"].get("postgres-setup")
    if plan.databases:
        assert setup is not None
        assert setup["command"] == [script.replace("$", "$$")]
