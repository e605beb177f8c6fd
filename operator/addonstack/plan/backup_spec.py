"""The ``AddonStackBackup`` and ``AddonStackRestore`` custom resources: spec and status models.

Their CRDs are generated from these classes (``addonstack.render.crd``), like the AddonStack's. A backup
names a stack in its own namespace and takes its target from the stack's ``spec.backup`` unless it names
one; a restore names a backup by location (so it works from an empty cluster, as disaster recovery
needs) and restores into a stack of its own namespace: the same stack, or a clone it creates.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from addonstack.plan.spec import MAX_STACK_NAME, BackupTarget, Condition, K8sName, S3Target, SecretRef, SpecModel
from addonstack.reasons import DataPhase

StackName = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", max_length=MAX_STACK_NAME)]
BackupId = Annotated[str, Field(pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", max_length=63)]


class AddonStackBackupSpec(SpecModel):
    stack_name: StackName = Field(description="The AddonStack (in this namespace) to back up.")
    target: BackupTarget | None = Field(default=None, description="Where to store it (default: the stack's).")
    encryption_key_secret_ref: SecretRef | None = Field(
        default=None, description="Secret with key 'key' sealing the secret values (default: the stack's)."
    )


class AddonStackBackupStatus(SpecModel):
    phase: DataPhase | None = None
    backup_id: str | None = Field(default=None, description="The backup's id in the bucket (this object's name).")
    location: str | None = Field(default=None, description="s3://bucket/prefix/namespace/stack/backupId/")
    job_name: str | None = None
    catalog_revision: str | None = None
    size_bytes: int | None = None
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class RestoreSource(SpecModel):
    namespace: K8sName | None = Field(default=None, description="Namespace of the backed-up stack (default: this one).")
    stack_name: StackName = Field(description="Name of the backed-up stack.")
    backup_id: BackupId = Field(description="Id of the backup (an AddonStackBackup's name, or a scheduled Job's).")
    s3: S3Target = Field(description="Where the backup is; its secretRef names a Secret in this namespace.")


class RestoreTarget(SpecModel):
    stack_name: StackName | None = Field(
        default=None, description="Stack to restore into, in this namespace (default: the source's name)."
    )


class AddonStackRestoreSpec(SpecModel):
    source: RestoreSource
    target: RestoreTarget | None = None
    encryption_key_secret_ref: SecretRef | None = Field(
        default=None, description="Secret with key 'key' that opens the backup's sealed secret values."
    )


class AddonStackRestoreStatus(SpecModel):
    phase: DataPhase | None = None
    target_stack: str | None = None
    created_stack: bool | None = Field(default=None, description="True when the restore created the target stack.")
    job_name: str | None = None
    carried_secret_keys: list[str] = Field(
        default_factory=list, description="<service>.<KEY> names (never values) carried from the backup."
    )
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)
