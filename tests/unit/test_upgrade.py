"""Upgrade policy without a cluster: a catalog bump changes no Manual stack's workload; approval, Automatic
stacks and maintenance windows move it; status lists the upgrades and says so in a condition."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

import pytest

from addonstack.catalog.loader import Catalog, load_catalog
from addonstack.controller.applycache import ApplyCache
from addonstack.controller.backup_status import pre_upgrade_backup
from addonstack.controller.decide import Desired, Observed, decide_actions, decide_status, desire
from addonstack.controller.upgrade import in_window
from addonstack.plan.backup_spec import AddonStackBackupSpec
from addonstack.plan.revision import catalog_revision, pin_images
from addonstack.plan.spec import MAX_STACK_NAME, MaintenanceWindow
from addonstack.render.stack import StackDefaults
from tests.unit.test_decide import body, served

DEFAULTS = StackDefaults()
MONDAY_NOON = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def cat() -> Catalog:
    return load_catalog()


@pytest.fixture(scope="module")
def bumped(cat: Catalog) -> Catalog:
    """The catalog of a newer operator: uptime-kuma's image tag moved."""
    svc = cat.services["uptime-kuma"]
    return dataclasses.replace(
        cat, services={**cat.services, "uptime-kuma": svc.model_copy(update={"image_tag": "9.9.9"})}
    )


def reconcile(
    b: dict[str, Any], cat: Catalog, now: datetime = MONDAY_NOON, backup: dict[str, Any] | None = None
) -> tuple[Desired, dict[str, Any], list]:
    observed = Observed(b, [], pre_upgrade_backup=backup)
    desired = desire(observed, DEFAULTS, cat, now)
    assert isinstance(desired, Desired), desired
    applied = {}
    for batch in decide_actions(desired, observed, ApplyCache()).batches:
        for key, obj, _, _ in batch:
            applied[key] = served(obj, ready=True)
    outcome = decide_status(desired, observed, applied, [], [])
    return desired, outcome.status, outcome.events


def image_of(desired: Desired, sid: str) -> str:
    dep = next(o for k, o in desired.objects.items() if k.kind in ("Deployment", "StatefulSet") and k.name == sid)
    return str(dep["spec"]["template"]["spec"]["containers"][0]["image"])


def condition(status: dict[str, Any]) -> dict[str, Any] | None:
    return next((c for c in status["conditions"] if c["type"] == "UpgradeAvailable"), None)


def test_revision_is_version_and_content_digest(cat: Catalog, bumped: Catalog) -> None:
    rev = catalog_revision(cat)
    assert rev.startswith("0.") and len(rev.rsplit("-", 1)[1]) == 12
    assert catalog_revision(bumped) != rev
    assert (
        pin_images(bumped, {"uptime-kuma": cat.services["uptime-kuma"].image_ref or ""})
        .services["uptime-kuma"]
        .image_ref
        == cat.services["uptime-kuma"].image_ref
    )


def test_manual_stack_keeps_its_images_until_approved(cat: Catalog, bumped: Catalog) -> None:
    b = body(["uptime-kuma"])
    first, status, _ = reconcile(b, cat)
    old = image_of(first, "uptime-kuma")
    assert status["catalogRevision"] == catalog_revision(cat)
    assert status["images"] == {"uptime-kuma": old}
    assert condition(status) is None, "no condition before an upgrade was ever available"
    b["status"] = status
    held, status2, events = reconcile(b, bumped)
    assert held.objects == first.objects, "a catalog bump changes no object of a Manual stack"
    assert status2["catalogRevision"] == catalog_revision(cat)
    assert status2["availableRevision"] == catalog_revision(bumped)
    assert status2["availableUpgrades"] == [
        {"service": "uptime-kuma", "from": old, "to": old.rsplit(":", 1)[0] + ":9.9.9"}
    ]
    cond = condition(status2)
    assert cond and cond["status"] == "True" and cond["reason"] == "UpgradeAvailable"
    assert catalog_revision(bumped) in cond["message"]
    assert not [e for e in events if e[1] == "Upgraded"]
    # A wrong revision approves nothing and says why.
    b["status"], b["spec"]["approvedRevision"] = status2, "0.0.1-000000000000"
    wrong, status3, _ = reconcile(b, bumped)
    assert (
        image_of(wrong, "uptime-kuma") == old and "not the operator's catalog revision" in condition(status3)["message"]
    )
    # Approval of the available revision rolls it.
    b["spec"]["approvedRevision"] = catalog_revision(bumped)
    moved, status4, events4 = reconcile(b, bumped)
    assert image_of(moved, "uptime-kuma").endswith(":9.9.9")
    assert status4["catalogRevision"] == catalog_revision(bumped) and not status4.get("availableUpgrades")
    assert condition(status4)["status"] == "False" and condition(status4)["reason"] == "UpToDate"
    assert [e for e in events4 if e[1] == "Upgraded"]


def test_new_services_take_the_current_catalog(cat: Catalog, bumped: Catalog) -> None:
    b = body(["gatus"])
    _, b["status"], _ = reconcile(b, cat)
    b["spec"]["services"] = ["gatus", "uptime-kuma"]
    desired, status, _ = reconcile(b, bumped)
    assert image_of(desired, "uptime-kuma").endswith(":9.9.9"), "not running yet: nothing to hold"
    assert status["catalogRevision"] == catalog_revision(bumped)


def test_automatic_stack_moves_inside_its_window(cat: Catalog, bumped: Catalog) -> None:
    b = body(
        ["uptime-kuma"],
        upgradePolicy="Automatic",
        maintenanceWindow={"days": ["Sat"], "start": "02:00", "end": "04:00"},
    )
    _, b["status"], _ = reconcile(b, cat)
    held, status, _ = reconcile(b, bumped, MONDAY_NOON)
    assert not image_of(held, "uptime-kuma").endswith(":9.9.9")
    assert condition(status)["reason"] == "OutsideMaintenanceWindow"
    saturday = datetime(2026, 12, 12, 3, 0, tzinfo=UTC)
    moved, _, _ = reconcile(b, bumped, saturday)
    assert image_of(moved, "uptime-kuma").endswith(":9.9.9")
    del b["spec"]["maintenanceWindow"]
    assert image_of(reconcile(b, bumped)[0], "uptime-kuma").endswith(":9.9.9"), "no window: any time"


@pytest.mark.parametrize(
    ("start", "end", "days", "now", "inside"),
    [
        ("02:00", "04:00", None, datetime(2026, 12, 7, 3, 59, tzinfo=UTC), True),
        ("02:00", "04:00", None, datetime(2026, 12, 7, 4, 0, tzinfo=UTC), False),
        ("23:00", "01:00", ["Sun"], datetime(2026, 12, 7, 0, 30, tzinfo=UTC), True),  # Monday 00:30, opened Sunday
        ("23:00", "01:00", ["Mon"], datetime(2026, 12, 7, 0, 30, tzinfo=UTC), False),
        ("23:00", "01:00", ["Mon"], datetime(2026, 12, 7, 23, 30, tzinfo=UTC), True),
    ],
)
def test_maintenance_window(start: str, end: str, days: list[str] | None, now: datetime, inside: bool) -> None:
    window = MaintenanceWindow.model_validate({"start": start, "end": end, "days": days})
    assert in_window(window, now) is inside


def test_upgrade_not_ready_in_time_is_rolled_back(cat: Catalog, bumped: Catalog) -> None:
    from datetime import timedelta

    from addonstack.controller.upgrade import DEADLINE, decide_upgrade
    from addonstack.plan.spec import AddonStackSpec

    b = body(["uptime-kuma"])
    _, b["status"], _ = reconcile(b, cat)
    old = b["status"]["images"]
    b["spec"]["approvedRevision"] = catalog_revision(bumped)
    _, moved, _ = reconcile(b, bumped)
    assert moved["upgrade"]["phase"] == "Rolling" and moved["upgrade"]["previousImages"] == old
    spec = AddonStackSpec.model_validate(b["spec"])
    soon = decide_upgrade(spec, moved, bumped, MONDAY_NOON + timedelta(seconds=DEADLINE / 2), 1)
    assert soon.pins == {} and soon.record is not None and soon.record.phase == "Rolling"
    late = decide_upgrade(spec, moved, bumped, MONDAY_NOON + timedelta(seconds=DEADLINE + 1), 1)
    assert late.pins == old and late.revision == catalog_revision(cat)
    assert late.record is not None and late.record.phase == "RolledBack"
    assert [e for e in late.events if e[1] == "UpgradeRolledBack"]
    # Rolled back: the same approval does not retry it (the stack would fail again); a spec change does.
    b["status"] = moved | {"images": old, "upgrade": late.record.model_dump(by_alias=True)}
    held, status, _ = reconcile(b, bumped)
    assert image_of(held, "uptime-kuma") == old["uptime-kuma"]
    assert condition(status)["reason"] == "UpgradeRolledBack" and status["upgrade"]["phase"] == "RolledBack"
    b["metadata"]["generation"] = 2
    retried, _, _ = reconcile(b, bumped)
    assert image_of(retried, "uptime-kuma").endswith(":9.9.9")


def test_waves_limit_concurrent_upgrades_and_stop_after_a_rollback(cat: Catalog, bumped: Catalog) -> None:
    from addonstack.controller.upgrade import Waves

    waves = Waves(limit=1)
    rev = catalog_revision(bumped)
    approved = []
    for name in ("a", "b"):
        b = body(["uptime-kuma"])
        b["metadata"]["name"] = name
        _, b["status"], _ = reconcile(b, cat)
        b["spec"]["approvedRevision"] = rev
        approved.append(b)
    first = desire(Observed(approved[0], []), DEFAULTS, bumped, MONDAY_NOON, waves)
    assert isinstance(first, Desired) and image_of(first, "uptime-kuma").endswith(":9.9.9")
    waves.observe("ns/a", {"phase": "Rolling", "revision": rev})
    second = desire(Observed(approved[1], []), DEFAULTS, bumped, MONDAY_NOON, waves)
    assert isinstance(second, Desired) and not image_of(second, "uptime-kuma").endswith(":9.9.9")
    assert second.upgrade is not None and second.upgrade.reason == "UpgradeQueued"
    assert "--max-concurrent-upgrades 1" in second.upgrade.message
    waves.observe("ns/a", {"phase": "RolledBack", "revision": rev})
    assert (
        waves.rolling == set() and waves.blocked("ns/b", rev) == f"the wave to {rev} stopped after ns/a was rolled back"
    )
    third = desire(Observed(approved[1], []), DEFAULTS, bumped, MONDAY_NOON, waves)
    assert isinstance(third, Desired) and not image_of(third, "uptime-kuma").endswith(":9.9.9")


def test_a_stack_from_before_revisions_holds_what_its_workloads_run(cat: Catalog, bumped: Catalog) -> None:
    b = body(["uptime-kuma"])
    first, _, _ = reconcile(b, cat)
    live = [served(o, ready=True) for o in first.objects.values()]
    old = image_of(first, "uptime-kuma")
    held = desire(Observed(b, live), DEFAULTS, bumped, MONDAY_NOON)  # no status at all
    assert isinstance(held, Desired) and image_of(held, "uptime-kuma") == old
    assert held.upgrade is not None and held.upgrade.reason == "UpgradeAvailable"
    b["spec"]["overrides"] = {"uptime-kuma": {"imageTag": "1.0.0"}}  # the user's own tag is not a pin
    own = desire(Observed(b, live), DEFAULTS, bumped, MONDAY_NOON)
    assert isinstance(own, Desired) and own.upgrade is not None and not own.upgrade.available


BACKUP = {
    "target": {"s3": {"endpoint": "http://s3.backup:9000", "bucket": "tenant-backups", "secretRef": {"name": "s3"}}}
}


def test_a_stack_with_backups_moves_only_after_its_pre_upgrade_backup_completed(cat: Catalog, bumped: Catalog) -> None:
    b = body(["uptime-kuma"], backup=BACKUP)
    first, b["status"], _ = reconcile(b, cat)
    old = image_of(first, "uptime-kuma")
    b["spec"]["approvedRevision"] = catalog_revision(bumped)
    name = "s1-pre-" + catalog_revision(bumped).rsplit("-", 1)[1]

    def backup(phase: str | None) -> dict[str, Any]:
        return {"metadata": {"name": name}, "status": {"phase": phase} if phase else {}}

    # Approved, no backup yet: the images stay, the decision asks the executor to create it.
    held, status, events = reconcile(b, bumped)
    assert image_of(held, "uptime-kuma") == old and held.objects == first.objects
    assert held.upgrade is not None and held.upgrade.backup == name
    assert condition(status)["reason"] == "UpgradeWaitingForBackup" and name in condition(status)["message"]
    assert status["catalogRevision"] == catalog_revision(cat) and status["availableRevision"]
    assert not [e for e in events if e[1] == "Upgraded"]
    # It exists and runs: still held, and not asked for again.
    for phase in (None, "Pending", "Quiescing", "Running"):
        waiting, status, _ = reconcile(b, bumped, backup=backup(phase))
        assert image_of(waiting, "uptime-kuma") == old and waiting.upgrade and waiting.upgrade.backup is None
        assert condition(status)["reason"] == "UpgradeWaitingForBackup"
    # Failed: held, and the condition says so and how to retry.
    failed, status, _ = reconcile(b, bumped, backup=backup("Failed"))
    assert image_of(failed, "uptime-kuma") == old and failed.upgrade and failed.upgrade.backup is None
    cond = condition(status)
    assert cond["reason"] == "UpgradeBackupFailed" and name in cond["message"] and "delete" in cond["message"]
    # Completed: the stack moves.
    moved, status, events = reconcile(b, bumped, backup=backup("Completed"))
    assert image_of(moved, "uptime-kuma").endswith(":9.9.9")
    assert status["catalogRevision"] == catalog_revision(bumped) and [e for e in events if e[1] == "Upgraded"]


def test_the_backup_gate_waits_for_approval_and_window(cat: Catalog, bumped: Catalog) -> None:
    """No backup is asked for before the move would happen: not for an unapproved Manual stack, not outside
    an Automatic stack's window; a stack without spec.backup moves without one."""
    b = body(["uptime-kuma"], backup=BACKUP)
    _, b["status"], _ = reconcile(b, cat)
    held, status, _ = reconcile(b, bumped)
    assert held.upgrade and held.upgrade.backup is None and condition(status)["reason"] == "UpgradeAvailable"
    b["spec"] |= {
        "upgradePolicy": "Automatic",
        "maintenanceWindow": {"days": ["Sat"], "start": "02:00", "end": "04:00"},
    }
    held, status, _ = reconcile(b, bumped)
    assert held.upgrade and held.upgrade.backup is None and condition(status)["reason"] == "OutsideMaintenanceWindow"
    inside, _, _ = reconcile(b, bumped, datetime(2026, 12, 12, 3, 0, tzinfo=UTC))
    assert inside.upgrade and inside.upgrade.backup, "inside the window the backup is asked for first"
    plain = body(["uptime-kuma"], approvedRevision=catalog_revision(bumped))
    _, plain["status"], _ = reconcile(body(["uptime-kuma"]), cat)
    assert image_of(reconcile(plain, bumped)[0], "uptime-kuma").endswith(":9.9.9")


def test_pre_upgrade_backup_object() -> None:
    stack = body(["uptime-kuma"], backup=BACKUP)
    longest = stack["metadata"]["name"] = "s" * MAX_STACK_NAME
    name = longest + "-pre-0123456789ab"
    obj = pre_upgrade_backup(name, stack)
    assert len(obj["metadata"]["name"]) <= 63 and obj["kind"] == "AddonStackBackup"
    assert obj["metadata"]["labels"] == {
        "addonstack.dev/stack": "s" * MAX_STACK_NAME,
        "addonstack.dev/purpose": "pre-upgrade",
    }
    assert AddonStackBackupSpec.model_validate(obj["spec"]).stack_name == "s" * MAX_STACK_NAME
    (owner,) = obj["metadata"]["ownerReferences"]
    assert owner["uid"] == "uid-1" and not owner.get("controller"), "owned by the stack, not controlled by it"
