"""What a backup holds and where: the manifest written next to the data, and the plans the agent follows.

Pure data. The manifest (``manifest.json``, written last, so a backup without one is incomplete) records the
stack's spec, the catalog revision it ran, each artifact's SHA-256 and size, and the secrets the data needs:
sealed (``crypto``) when the provider gave a key, otherwise referenced by Secret name only. The agent's
plans are what a Job tells ``python -m addonstack.backup.agent`` in one JSON variable; they name
databases, mount paths and the target, never a secret value.
"""

from __future__ import annotations

import posixpath
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
SEALED_SECRETS = "secrets.sealed.json"
PLAN_ENV = "ADDONSTACK_BACKUP_PLAN"  # the agent's plan, as JSON
KEY_PATH_ENV = "ADDONSTACK_BACKUP_KEY_FILE"  # file holding the provider's sealing key (a mounted Secret)
BACKUP_ID_ENV = "ADDONSTACK_BACKUP_ID"  # a scheduled backup's id: its Job's name (downward API)


class Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


class S3Location(Model):
    """Where backups go. Credentials come from the environment (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)."""

    endpoint: str
    bucket: str
    region: str = "us-east-1"
    prefix: str = ""

    def stack_prefix(self, namespace: str, stack: str) -> str:
        return posixpath.join(self.prefix.strip("/"), namespace, stack).lstrip("/") + "/"

    def backup_prefix(self, namespace: str, stack: str, backup_id: str) -> str:
        return f"{self.stack_prefix(namespace, stack)}{backup_id}/"


class Artifact(Model):
    key: str = Field(description="Object key relative to the backup's prefix.")
    sha256: str
    size: int


class DatabaseEntry(Model):
    service: str
    database: str
    role: str
    artifact: Artifact


class VolumeEntry(Model):
    service: str
    volume: str
    artifact: Artifact


class SecretsEntry(Model):
    mode: Literal["sealed", "referenced"]
    secrets: dict[str, str] = Field(description="Service -> name of its Secret in the source namespace.")
    keys: dict[str, list[str]] = Field(description="Service -> keys the data needs (names only).")
    artifact: Artifact | None = None


class Manifest(Model):
    format_version: int = FORMAT_VERSION
    backup_id: str
    namespace: str
    stack: str
    trigger: Literal["manual", "schedule", "pre-upgrade"] = "manual"
    created_at: str
    catalog_revision: str | None = None
    addonstack_version: str
    spec: dict[str, Any] = Field(default_factory=dict)
    databases: list[DatabaseEntry] = Field(default_factory=list)
    volumes: list[VolumeEntry] = Field(default_factory=list)
    secrets: SecretsEntry | None = None

    @property
    def size(self) -> int:
        """Bytes stored for this backup (artifacts; the manifest itself not counted)."""
        arts = [d.artifact for d in self.databases] + [v.artifact for v in self.volumes]
        if self.secrets and self.secrets.artifact:
            arts.append(self.secrets.artifact)
        return sum(a.size for a in arts)


# ---- what the Jobs tell the agent -------------------------------------------------------------------


class DatabaseTarget(Model):
    service: str
    database: str
    role: str


class VolumeTarget(Model):
    service: str
    volume: str
    path: str = Field(description="Where the Job mounts the volume.")


class SecretSource(Model):
    service: str
    secret: str
    path: str = Field(description="Where the Job mounts the Secret (one file per key).")
    keys: list[str]


class DumpPlan(Model):
    """``agent dump``: what to back up, where to, and how many scheduled backups to keep."""

    namespace: str
    stack: str
    backup_id: str | None = Field(default=None, description="None: the agent names it by the time (schedules).")
    trigger: Literal["manual", "schedule", "pre-upgrade"] = "manual"
    catalog_revision: str | None = None
    spec: dict[str, Any] = Field(default_factory=dict)
    target: S3Location
    databases: list[DatabaseTarget] = Field(default_factory=list)
    volumes: list[VolumeTarget] = Field(default_factory=list)
    secrets: list[SecretSource] = Field(default_factory=list)
    retention: int | None = Field(default=None, description="Keep this many scheduled backups; prune older ones.")


class RestorePlan(Model):
    """``agent restore``: which backup, and where each of its databases and volumes goes now."""

    source_namespace: str
    source_stack: str
    backup_id: str
    target: S3Location
    databases: list[DatabaseTarget] = Field(default_factory=list)
    volumes: list[VolumeTarget] = Field(default_factory=list)
