"""What every test PostgreSQL cluster is initialised with (the unit tier's and the live tier's alike)."""

from __future__ import annotations

from pathlib import Path

# Superuser "postgres", UTF-8, no locale, trust on the local socket (the harness), SCRAM passwords on TCP
# (what the services and the setup SQL's roles use); --no-sync because the data dies with the test.
INITDB_FLAGS = (
    "-U",
    "postgres",
    "-E",
    "UTF8",
    "--no-locale",
    "--no-sync",
    "--auth-local=trust",
    "--auth-host=scram-sha-256",
)

# The server's start options: loopback TCP on the given port, the socket in the given directory, and no
# durability work (the data dies with the test).
SERVER_OPTIONS = "-h 127.0.0.1 -p {port} -k {sock} -c fsync=off -c full_page_writes=off"

# Creates the platform's admin role over the trusted local socket; psql variables admin and pw hold its name
# and (hostile) password, so neither is ever spliced into SQL text.
CREATE_ADMIN_SQL = "CREATE ROLE :\"admin\" SUPERUSER LOGIN PASSWORD :'pw';\n"


def psql_as_postgres(bin_dir: Path, sock: Path | str, port: int, **variables: str) -> list[str]:
    """psql as the superuser over the local socket, stopping at the first error, with ``-v`` variables."""
    args = [str(bin_dir / "psql"), "-h", str(sock), "-p", str(port), "-U", "postgres", "-d", "postgres"]
    args += ["-v", "ON_ERROR_STOP=1"]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    return args
