"""What every test PostgreSQL cluster is initialised with (the unit tier's and the live tier's alike)."""

from __future__ import annotations

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
