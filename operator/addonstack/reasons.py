"""Closed sets of words AddonStack reports: why a service was skipped, which phase a service is in, the
reason of a kstatus condition (and of each service's entry in status), the reason of an Event.

One module at the bottom layer (next to ``constants``), so the plan, the API models, the CRD and the
operator all name them the same way, and the docs test walks them instead of reading source code.
They are ``StrEnum``s: a member *is* its string, so it compares equal to, formats as and serializes
to the word on the wire. Adding a reason is one line in its enum (then ``make generate`` and a
paragraph in docs/troubleshooting.md, which the docs test asks for).
"""

from __future__ import annotations

from enum import StrEnum


class SkipReason(StrEnum):
    UNKNOWN_SERVICE = "unknown_service"
    NO_IMAGE = "no_image"
    GPU_REQUIRED = "gpu_required"
    MISSING_CREDENTIALS = "missing_credentials"
    PLATFORM_UNSUPPORTED = "platform_unsupported"
    CONFLICT = "conflict"
    DEPENDENCY_SKIPPED = "dependency_skipped"
    EXPERIMENTAL = "experimental"
    DOCKER_SOCKET = "docker_socket"
    POD_SECURITY = "pod_security"  # the namespace enforces a stricter Pod Security level than the image allows


class ServicePhase(StrEnum):
    PENDING = "Pending"
    PROGRESSING = "Progressing"
    READY = "Ready"
    FAILED = "Failed"
    WAITING_FOR_DATABASE = "WaitingForDatabase"
    PAUSED = "Paused"


class ConditionReason(StrEnum):
    # -- all is well / waiting (Reconciling=True) --
    READY = "Ready"
    IDLE = "Idle"  # the reason of a condition that is False because nothing is happening
    PROGRESSING = "Progressing"
    WAITING_FOR_DATABASE = "WaitingForDatabase"
    # -- a person must act (Stalled=True) --
    INVALID_SPEC = "InvalidSpec"
    DATABASE_NOT_CONFIGURED = "DatabaseNotConfigured"
    REDIS_NOT_CONFIGURED = "RedisNotConfigured"
    ADMIN_SECRET_MISSING = "AdminSecretMissing"
    DATABASE_SETUP_FAILED = "DatabaseSetupFailed"
    QUOTA_EXCEEDED = "QuotaExceeded"
    LIMIT_RANGE_VIOLATED = "LimitRangeViolated"
    FAILED_CREATE = "FailedCreate"
    IMAGE_PULL_FAILED = "ImagePullFailed"
    CRASH_LOOP_BACK_OFF = "CrashLoopBackOff"
    OOM_KILLED = "OOMKilled"
    UNSCHEDULABLE = "Unschedulable"
    ROLLOUT_FAILED = "RolloutFailed"
    NAME_CONFLICT = "NameConflict"
    APPLY_FAILED = "ApplyFailed"
    # UpgradeAvailable condition: a new catalog revision would change images (Manual: awaiting approval).
    UPGRADE_AVAILABLE = "UpgradeAvailable"
    OUTSIDE_MAINTENANCE_WINDOW = "OutsideMaintenanceWindow"
    UP_TO_DATE = "UpToDate"
    UPGRADE_ROLLED_BACK = "UpgradeRolledBack"
    UPGRADE_QUEUED = "UpgradeQueued"
    UPGRADE_WAITING_FOR_BACKUP = "UpgradeWaitingForBackup"  # the pre-upgrade AddonStackBackup has not completed
    UPGRADE_BACKUP_FAILED = "UpgradeBackupFailed"  # the pre-upgrade backup failed: the stack keeps its images
    # -- backups and restores (AddonStackBackup, AddonStackRestore, the stack's BackupFailed condition) --
    COMPLETED = "Completed"  # a backup or restore finished
    QUIESCING = "Quiescing"  # waiting for the workloads whose volumes are archived to stop
    BACKUP_FAILED = "BackupFailed"
    BACKUP_TARGET_MISSING = "BackupTargetMissing"
    BACKUP_NOT_FOUND = "BackupNotFound"
    SEALING_KEY_MISSING = "SealingKeyMissing"
    RESTORE_FAILED = "RestoreFailed"

    @property
    def stalls(self) -> bool:
        """True when the stack cannot progress until a person changes something."""
        return self not in _WAITING


_WAITING = frozenset(
    {
        ConditionReason.READY,
        ConditionReason.IDLE,
        ConditionReason.PROGRESSING,
        ConditionReason.WAITING_FOR_DATABASE,
        ConditionReason.UPGRADE_AVAILABLE,
        ConditionReason.OUTSIDE_MAINTENANCE_WINDOW,
        ConditionReason.UP_TO_DATE,
        ConditionReason.UPGRADE_ROLLED_BACK,
        ConditionReason.UPGRADE_QUEUED,
        ConditionReason.UPGRADE_WAITING_FOR_BACKUP,
        ConditionReason.UPGRADE_BACKUP_FAILED,
        ConditionReason.COMPLETED,
        ConditionReason.QUIESCING,
    }
)


class DataPhase(StrEnum):
    """``status.phase`` of an AddonStackBackup or AddonStackRestore."""

    PENDING = "Pending"
    PREPARING = "Preparing"  # restore: reading the backup, carrying secrets, creating the target stack
    QUIESCING = "Quiescing"  # workloads whose volumes are read or written are scaled to zero
    RUNNING = "Running"  # the Job runs
    COMPLETED = "Completed"
    FAILED = "Failed"

    @property
    def done(self) -> bool:
        return self in (DataPhase.COMPLETED, DataPhase.FAILED)


class EventReason(StrEnum):
    """``reason`` of the Kubernetes Events the operator records on an AddonStack (besides stall reasons)."""

    READY = "Ready"
    UPGRADED = "Upgraded"  # moved to a new catalog revision (images changed)
    UPGRADE_ROLLED_BACK = "UpgradeRolledBack"  # not Ready within the deadline: back to the previous images
    CREATED = "Created"  # children created for the first time
    REPAIRED = "Repaired"  # a child deleted or edited outside the operator was put back
    PRUNED = "Pruned"  # children of services no longer in the stack were deleted
    SERVICE_SKIPPED = "ServiceSkipped"
    SERVICE_RESUMED = "ServiceResumed"
