"""PostgreSQL databases for every service that needs one, and the idempotent setup script.

The script is shared by the Compose ``postgres-setup`` container and the Kubernetes setup Job. It
connects with the platform's admin credentials from the environment (PGHOST, PGUSER, PGPASSWORD),
creates each role and database only if missing, and sets the password from a psql variable, so a
password is never pasted into SQL text and quotes, backslashes or ``$`` in it are harmless. The admin
need not be a superuser: CREATEROLE and CREATEDB suffice (it grants itself each role it creates, which
PostgreSQL 16+ requires before making that role a database owner).
Database, role and schema names come only from the catalog, whose schema restricts them to ``[a-z0-9_]``;
extension names may also hold ``-`` (``uuid-ossp``) and are always double-quoted in the SQL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from addonstack.catalog.model import Service

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_EXTENSION = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")


@dataclass(frozen=True)
class DatabaseNeed:
    service_id: str
    database: str
    role: str
    password_key: str  # the service's variable holding the password
    extensions: tuple[str, ...] = ()
    createdb: bool = False
    schemas: tuple[str, ...] = ()

    @property
    def password_env(self) -> str:
        """Name of the variable the setup container reads the password from."""
        return f"ADDONSTACK_DB_PASSWORD_{self.role.upper()}"


def database_needs(services: list[Service]) -> list[DatabaseNeed]:
    out = []
    for svc in services:
        if svc.postgres is None:
            continue
        pg = svc.postgres
        # The catalog schema already guarantees these; never trust input.
        for name, rule in [(n, _NAME) for n in (pg.database, pg.role, *pg.schemas)] + [
            (e, _EXTENSION) for e in pg.extensions
        ]:
            if not rule.fullmatch(name):
                raise ValueError(f"{svc.id}: unsafe PostgreSQL name {name!r}")
        out.append(
            DatabaseNeed(
                svc.id, pg.database, pg.role, pg.password_var, tuple(pg.extensions), pg.createdb, tuple(pg.schemas)
            )
        )
    return out


WAIT = """\
i=0
until pg_isready -q; do
  i=$((i+1)); [ "$i" -ge 90 ] && { echo "PostgreSQL at $PGHOST:$PGPORT is not reachable" >&2; exit 1; }
  sleep 2
done
"""


def _in_database(need: DatabaseNeed) -> str:
    """Extensions and schemas, created inside the service's database (schemas owned by its role)."""
    if not need.extensions and not need.schemas:
        return ""
    lines = [f"\\connect {need.database}"]
    lines += [f'CREATE EXTENSION IF NOT EXISTS "{e}";' for e in need.extensions]
    for schema in need.schemas:
        lines.append(f'CREATE SCHEMA IF NOT EXISTS "{schema}" AUTHORIZATION :"role";')
        lines.append(f'ALTER SCHEMA "{schema}" OWNER TO :"role";')
    return "\n".join(lines) + "\n"


def _create_block(need: DatabaseNeed) -> str:
    ext = _in_database(need)
    # CREATEDB for apps whose start creates databases (Rails db:create); the admin holds CREATEDB itself.
    createdb = 'ALTER ROLE :"role" CREATEDB;\n' if need.createdb else ""
    return f"""\
echo "database {need.database} for {need.service_id}"
psql -v ON_ERROR_STOP=1 -v db={need.database} -v role={need.role} -v pw="${need.password_env}" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'role')\\gexec
ALTER ROLE :"role" WITH LOGIN PASSWORD :'pw';
{createdb}GRANT :"role" TO CURRENT_USER;
SELECT format('CREATE DATABASE %I OWNER %I', :'db', :'role') WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = :'db')\\gexec
ALTER DATABASE :"db" OWNER TO :"role";
GRANT ALL PRIVILEGES ON DATABASE :"db" TO :"role";
{ext}SQL
"""


def setup_script(needs: list[DatabaseNeed]) -> str:
    """POSIX sh script creating every database and role; safe to run any number of times."""
    return "set -eu\n" + WAIT + "".join(_create_block(n) for n in needs) + 'echo "databases ready"\n'


def _drop_block(need: DatabaseNeed) -> str:
    return f"""\
echo "dropping database {need.database} of {need.service_id}"
psql -v ON_ERROR_STOP=1 -v db={need.database} -v role={need.role} <<'SQL'
DROP DATABASE IF EXISTS :"db" WITH (FORCE);
DROP ROLE IF EXISTS :"role";
SQL
"""


def drop_script(needs: list[DatabaseNeed]) -> str:
    """POSIX sh script dropping the databases and roles (deletion policy Delete)."""
    return "set -eu\n" + WAIT + "".join(_drop_block(n) for n in needs) + 'echo "databases dropped"\n'
