"""Upgrade policy, as pure decisions: which images a stack renders when the catalog has moved, and what its
status says about it (``status.catalogRevision``, ``images``, ``availableUpgrades``, condition UpgradeAvailable).

``decide_upgrade`` reads the stack's spec and last status and the operator's catalog; it does no IO and takes
``now`` as an argument, so every rule is tested without a cluster (tests/unit/test_upgrade.py):

- a new stack takes the catalog as it is; one from before revisions (no ``status.images``) holds the tags its
  workloads run (:func:`running_images`);
- when the catalog's image of no running service changed, the stack moves to the new revision at once;
- otherwise Manual stacks keep their recorded images until ``spec.approvedRevision`` names the operator's
  revision, and Automatic stacks move inside ``spec.maintenanceWindow`` (any time without one);
- a stack with ``spec.backup`` moves only once its pre-upgrade backup (an AddonStackBackup named
  ``<stack>-pre-<digest>``, :class:`BackupGate`) has completed; until then the executor creates it and waits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any

from addonstack.catalog.model import Catalog
from addonstack.controller.objects import kube_time
from addonstack.controller.status import _condition
from addonstack.plan.revision import catalog_revision, upgrades
from addonstack.plan.spec import AddonStackSpec, AddonStackStatus, AvailableUpgrade, MaintenanceWindow, UpgradeRecord
from addonstack.reasons import ConditionReason, DataPhase, EventReason

CONDITION = "UpgradeAvailable"
DEADLINE = 600.0  # seconds an upgraded stack has to become Ready before it is rolled back
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


@dataclass
class UpgradeDecision:
    """What to render (``pins``: images to keep) and what the status and Events say."""

    pins: dict[str, str]
    revision: str  # the revision the stack's images come from after this reconcile
    available_revision: str | None = None
    available: list[AvailableUpgrade] = field(default_factory=list)
    reason: ConditionReason = ConditionReason.UP_TO_DATE
    message: str = ""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    record: UpgradeRecord | None = None  # status.upgrade after this reconcile
    backup: str | None = None  # name of the pre-upgrade AddonStackBackup the executor creates (not there yet)


@dataclass(frozen=True)
class BackupGate:
    """The pre-upgrade backup of a stack with ``spec.backup``: its object's name, whether it exists, and its
    ``status.phase`` (None: not set yet)."""

    name: str
    exists: bool = False
    phase: str | None = None

    def hold(self) -> tuple[ConditionReason, str] | None:
        """Why the move waits (None: the backup completed, the stack may move)."""
        if self.phase == DataPhase.COMPLETED:
            return None
        if self.phase == DataPhase.FAILED:
            why = f"the pre-upgrade backup (AddonStackBackup {self.name}) failed; the stack keeps its images. "
            return ConditionReason.UPGRADE_BACKUP_FAILED, why + "Read its status, fix the cause, delete it to retry"
        state = f"phase {self.phase or DataPhase.PENDING}" if self.exists else "being created"
        return ConditionReason.UPGRADE_WAITING_FOR_BACKUP, f"waiting for AddonStackBackup {self.name} ({state})"


def pre_upgrade_backup_name(stack: str, revision: str) -> str:
    """``<stack>-pre-<the revision's 12 hex digest>``: at most 40 + 5 + 12 characters."""
    return f"{stack}-pre-{revision.rpartition('-')[2]}"


def backup_gate(spec: AddonStackSpec, stack: str, revision: str, live: Mapping[str, Any] | None) -> BackupGate | None:
    """The gate of a move to ``revision`` (None without ``spec.backup``: nothing to wait for); ``live`` is the
    AddonStackBackup read from the cluster (None: not there)."""
    if spec.backup is None:
        return None
    phase = ((live or {}).get("status") or {}).get("phase")
    return BackupGate(pre_upgrade_backup_name(stack, revision), live is not None, str(phase) if phase else None)


def in_window(window: MaintenanceWindow | None, now: datetime) -> bool:
    """Whether ``now`` (UTC) falls in the window; a window ending before it starts spans midnight."""
    if window is None:
        return True
    start, end = time.fromisoformat(window.start), time.fromisoformat(window.end)
    clock = now.time().replace(second=0, microsecond=0)
    day = now.weekday()
    if start <= end:
        inside, opened = start <= clock < end, day
    elif clock >= start:
        inside, opened = True, day
    else:
        inside, opened = clock < end, (day - 1) % 7  # after midnight: the window opened the day before
    return inside and (not window.days or DAYS[opened] in window.days)


@dataclass
class Waves:
    """Operator-wide rollout limits (the one stateful piece, kept by the process beside the apply cache).

    At most ``limit`` stacks are Rolling at once (``--max-concurrent-upgrades``); once a stack of a revision is
    rolled back, no further stack starts moving to that revision in this process (the wave stops; a restart
    or a new revision resumes). What a stack's status says rebuilds the set after a restart.
    """

    limit: int = 5
    deadline: float = DEADLINE
    rolling: set[str] = field(default_factory=set)
    halted: dict[str, str] = field(default_factory=dict)  # revision -> the stack whose rollback stopped it

    def blocked(self, stack: str, revision: str) -> str | None:
        """Why ``stack`` may not start moving to ``revision`` now (None: it may)."""
        if revision in self.halted:
            return f"the wave to {revision} stopped after {self.halted[revision]} was rolled back"
        if stack not in self.rolling and len(self.rolling) >= self.limit:
            return f"{len(self.rolling)} stack(s) are upgrading (--max-concurrent-upgrades {self.limit}); next wave"
        return None

    def observe(self, stack: str, record: Mapping[str, Any] | None) -> None:
        phase = (record or {}).get("phase")
        if phase == "Rolling":
            self.rolling.add(stack)
        else:
            self.rolling.discard(stack)
        if phase == "RolledBack":
            self.halted.setdefault(str((record or {}).get("revision")), stack)


def _rollback(rec: UpgradeRecord, now: datetime, deadline: float) -> UpgradeDecision | None:
    """Back to the previous images when a Rolling upgrade is not Ready past the deadline."""
    started = kube_time(rec.started_at)
    if rec.phase != "Rolling" or (now - started).total_seconds() <= deadline:
        return None
    why = f"not Ready {int(deadline)} s after the upgrade to {rec.revision}; back to {rec.from_revision}"
    back = rec.model_copy(update={"phase": "RolledBack", "message": why})
    return UpgradeDecision(
        dict(rec.previous_images), rec.from_revision, events=[("Warning", EventReason.UPGRADE_ROLLED_BACK, why)],
        record=back,
    )  # fmt: skip


def decide_upgrade(
    spec: AddonStackSpec,
    prev_status: Mapping[str, Any] | None,
    cat: Catalog,
    now: datetime,
    generation: int = 0,
    deadline: float = DEADLINE,
    blocked: str | None = None,
    live_images: Mapping[str, str] | None = None,
    gate: BackupGate | None = None,
) -> UpgradeDecision:
    """``blocked``: why a move may not start now (:meth:`Waves.blocked`); the stack then keeps its images.
    ``gate``: the pre-upgrade backup a move waits for (:func:`backup_gate`)."""
    current = catalog_revision(cat)
    prev = prev_status or {}
    rec = UpgradeRecord.model_validate(prev["upgrade"]) if prev.get("upgrade") else None
    if rec is not None and (back := _rollback(rec, now, deadline)) is not None:
        return back
    pins: dict[str, str] = dict(prev.get("images") or live_images or {})
    changes = upgrades(cat, pins) if pins else []
    if not changes:
        return UpgradeDecision({}, current, record=rec if rec and rec.phase == "Rolling" else None)
    listed = [AvailableUpgrade.model_validate({"service": s, "from": a, "to": b}) for s, a, b in changes]
    running = str(prev.get("catalogRevision") or "unknown")
    summary = ", ".join(f"{s} {a} -> {b}" for s, a, b in changes)
    started = UpgradeRecord(
        phase="Rolling", revision=current, from_revision=running, previous_images=pins,
        started_at=now.strftime("%Y-%m-%dT%H:%M:%SZ"), generation=generation,
    )  # fmt: skip
    move = UpgradeDecision(
        {}, current, events=[("Normal", EventReason.UPGRADED, f"catalog revision {running} -> {current}: {summary}")],
        record=started,
    )  # fmt: skip
    if rec is not None and rec.phase == "RolledBack" and rec.revision == current and generation <= rec.generation:
        hint = f"{rec.message}; change the spec (e.g. set approvedRevision again after a fix) to retry"
        return UpgradeDecision(pins, running, current, listed, ConditionReason.UPGRADE_ROLLED_BACK, hint, record=rec)
    if blocked is not None:
        move = UpgradeDecision(pins, running, current, listed, ConditionReason.UPGRADE_QUEUED, f"queued: {blocked}")
    elif gate is not None and (hold := gate.hold()) is not None:
        make = None if gate.exists else gate.name
        move = UpgradeDecision(pins, running, current, listed, hold[0], hold[1], backup=make)
    if (spec.upgrade_policy or "Manual") == "Automatic":
        if in_window(spec.maintenance_window, now):
            return move
        return UpgradeDecision(
            pins, running, current, listed, ConditionReason.OUTSIDE_MAINTENANCE_WINDOW,
            f"revision {current} changes {len(changes)} image(s); it rolls out in the next maintenance window",
        )  # fmt: skip
    if spec.approved_revision == current:
        return move
    hint = f"set spec.approvedRevision: {current} to move ({summary})"
    if spec.approved_revision:
        hint = f"spec.approvedRevision {spec.approved_revision} is not the operator's catalog revision; {hint}"
    return UpgradeDecision(pins, running, current, listed, ConditionReason.UPGRADE_AVAILABLE, hint[:2000])


def running_images(cat: Catalog, spec: AddonStackSpec, workloads: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """For a stack without ``status.images`` (made before revisions): the catalog image at the tag it runs.

    Read from the live workloads (``workloads`` by service id), so the first reconcile by a newer operator
    holds what runs instead of re-rolling it. Only the tag is taken (a registry mirror may have rewritten
    the repository); services with an imageTag override or a prebuilt image are the user's own choice.
    """
    out: dict[str, str] = {}
    for sid, obj in workloads.items():
        svc = cat.services.get(sid)
        ov = (spec.overrides or {}).get(sid)
        if svc is None or svc.image is None or (ov and ov.image_tag) or sid in (spec.prebuilt_images or {}):
            continue
        containers = ((obj.get("spec") or {}).get("template") or {}).get("spec", {}).get("containers") or [{}]
        ref = str(containers[0].get("image") or "")
        repo, _, tag = ref.rpartition(":")
        if not tag or "/" in tag or "@" in ref or not repo.endswith(svc.image.removeprefix("docker.io/")):
            continue
        out[sid] = f"{svc.image}:{tag}"
    return out


def recorded_images(services: list[tuple[str, str | None]]) -> dict[str, str]:
    """status.images: the catalog image of each planned service (built ones have none)."""
    return {sid: ref for sid, ref in sorted(services) if ref}


def with_upgrade_status(
    status: AddonStackStatus, decision: UpgradeDecision, images: dict[str, str], prev: Mapping[str, Any] | None
) -> AddonStackStatus:
    """``status`` with the revision, the images and, once an upgrade has been available, the condition."""
    conditions = list(status.conditions)
    ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
    record = decision.record
    if record is not None and record.phase == "Rolling" and ready and not decision.events:
        record = None  # the upgraded stack became Ready: done
    had = any(c.get("type") == CONDITION for c in (prev or {}).get("conditions") or [])
    if decision.available or had:
        old = {c.get("type", ""): c for c in (prev or {}).get("conditions") or []}
        available = bool(decision.available)
        conditions.append(
            _condition(old, CONDITION, available, decision.reason, decision.message, status.observed_generation or 0)
        )
    return status.model_copy(
        update={
            "conditions": conditions,
            "catalog_revision": decision.revision,
            "images": images,
            "available_revision": decision.available_revision,
            "available_upgrades": decision.available,
            "upgrade": record,
        }
    )
