"""Which events on a stack's children are worth a pass: not our own writes coming back, not changes that
move nothing the stack's status reads.

Readiness from watches (``watch.py``) re-evaluated a stack on every event of every child. A new stack of five
services sets off about sixty: the ~30 objects the operator just applied come back as ADDED, each pod is
added, scheduled and started, each Deployment's status is rewritten two or three times on its way to
available. Each event pass reads about ten lists, so a new stack cost five or six passes nobody needed, and
under a burst those reads were the operator's main cost (bench/operator.py: throughput against a raw client).

Two filters, both exact about what the status depends on:

- **Own writes.** :class:`OwnWrites` remembers the resourceVersion each apply returned (and each delete); the
  event carrying exactly that version is our write coming back. The pass that wrote it computed the stack's
  status from the apply's answer already.
- **Fingerprints.** :func:`fingerprint` keeps, per kind, what ``status.py`` and the repair logic read: a
  workload's phase, ready and desired replicas, problem and generation (a hand edit of its spec moves the
  generation); a Job's counts and conditions; a pod's problem (CrashLoopBackOff, image pull, OOMKilled,
  unschedulable: the readiness of pods reaches the stack through their workload); a claim's spec. An event
  whose fingerprint equals the one last seen for that object changes nothing a pass would compute. Kinds only
  the operator writes (Secrets, ConfigMaps, Services) have none: any event of theirs that is not our own
  write is a hand edit to repair. A deletion always counts, unless we deleted it.

Every event still counts for something: a pass always follows the last event whose fingerprint changed, so
the stack's final status is computed from the children's final state.

**Progress waits** (:class:`Urgency`). A workload that becomes ready while another workload of its stack is still
on its way moves only the stack's count of ready services: the stack stays Progressing. In a burst of new stacks
each of a stack's five workloads became ready at its own time and each set off a pass of about a dozen reads
(3.5 passes per new stack, bench/operator.py). Such an event is ``PROGRESS``: its pass waits
``watch.PROGRESS_DELAY`` and takes along whatever else happens meanwhile; the event that makes the last workload
ready, a workload going back, a problem, a Job, a deletion or a hand edit are ``NOW``. Pure: no client, no kopf.
"""

from __future__ import annotations

import contextlib
import enum
import json
from collections import Counter
from collections.abc import Hashable, Iterator, Mapping
from typing import Any, TypeVar

from addonstack.constants import LABEL_STACK
from addonstack.controller.objects import WORKLOAD_KINDS, labels_of
from addonstack.controller.status import pod_problem, workload_state

__all__ = ["ChildEvents", "OwnWrites", "Urgency", "fingerprint"]

LIMIT = 200_000  # entries of either map; beyond it they are cleared (only costs passes, never a missed change)
ObjKey = tuple[str, str, str]  # (kind, namespace, name)
DELETED = "-"  # the resourceVersion recorded for our own delete
V = TypeVar("V")


def _bounded_put(table: dict[ObjKey, V], key: ObjKey, value: V) -> None:
    if len(table) >= LIMIT:
        table.clear()
    table[key] = value


def _key(body: Mapping[str, Any]) -> ObjKey:
    meta = body.get("metadata") or {}
    return str(body.get("kind") or ""), str(meta.get("namespace") or ""), str(meta.get("name") or "")


class OwnWrites:
    """resourceVersions the operator's own writes produced, until their watch event comes back.

    The watch can deliver a write's event before the write's answer reaches the pass that sent it (under load,
    one event in six for Services): while a write of an object is in flight (:meth:`sending`), its events are
    taken as that write's. A hand edit landing in the same instant is left to the drift timer."""

    def __init__(self) -> None:
        self.versions: dict[ObjKey, str] = {}
        self.in_flight: Counter[ObjKey] = Counter()

    @contextlib.contextmanager
    def sending(self, kind: str, namespace: str, name: str) -> Iterator[None]:
        """Around one write of the object: its events meanwhile are ours."""
        key = (kind, namespace, name)
        self.in_flight[key] += 1
        try:
            yield
        finally:
            self.in_flight[key] -= 1
            if self.in_flight[key] <= 0:
                del self.in_flight[key]

    def wrote(self, obj: Mapping[str, Any]) -> None:
        rv = (obj.get("metadata") or {}).get("resourceVersion")
        if rv:
            self._put(_key(obj), str(rv))

    def deleted(self, kind: str, namespace: str, name: str) -> None:
        self._put((kind, namespace, name), DELETED)

    def _put(self, key: ObjKey, version: str) -> None:
        _bounded_put(self.versions, key, version)

    def echo(self, type_: str, body: Mapping[str, Any]) -> bool:
        """True when this event is our own last write coming back (then it is forgotten)."""
        key = _key(body)
        if key in self.in_flight:
            return True
        mine = self.versions.get(key)
        if mine is None:
            return False
        rv = str((body.get("metadata") or {}).get("resourceVersion") or "")
        if type_ == "DELETED":
            if mine == DELETED:
                del self.versions[key]
                return True
            return False
        if rv == mine:
            del self.versions[key]
            return True
        if mine != DELETED and rv.isdigit() and mine.isdigit() and int(rv) < int(mine):
            return False  # an older event delivered late: keep waiting for ours
        del self.versions[key]  # someone wrote after us
        return False


class Urgency(enum.Enum):
    """How soon an event's pass should run (``watch.Debouncer`` turns it into a delay)."""

    NOW = "now"  # the stack's conditions may change: readiness of the last workload, a problem, a repair
    PROGRESS = "progress"  # one more workload ready while another is still on its way: the count moves, no more


def fingerprint(body: Mapping[str, Any]) -> Hashable | None:
    """What of a child can move its stack's status or call for a repair; None: every change counts."""
    kind = body.get("kind")
    meta = body.get("metadata") or {}
    gone = meta.get("deletionTimestamp")
    if kind in WORKLOAD_KINDS:
        phase, ready, desired, message, reason = workload_state(body, False)
        problem = message if phase == "Failed" else ""
        return meta.get("generation"), gone, phase, ready, desired, str(reason), problem
    if kind == "Job":
        st = body.get("status") or {}
        conditions = tuple(sorted((str(c.get("type")), str(c.get("status"))) for c in st.get("conditions") or []))
        return meta.get("generation"), gone, int(st.get("succeeded") or 0), int(st.get("failed") or 0), conditions
    if kind == "Pod":
        return gone, pod_problem([body])
    if kind == "PersistentVolumeClaim":
        spec = body.get("spec") or {}
        return gone, json.dumps(spec.get("resources"), sort_keys=True), spec.get("storageClassName")
    return None


HEALTHY_POD = (None, None)  # a pod seen for the first time without a problem moves nothing


class ChildEvents:
    """The filter ``watch.py`` asks before scheduling a pass: :meth:`assess` (or :meth:`worth_a_pass`)."""

    def __init__(self, own: OwnWrites) -> None:
        self.own = own
        self.seen: dict[ObjKey, Hashable] = {}
        # (namespace, stack) -> workload (kind, name) -> ready, for telling progress from the last step
        self.workloads: dict[tuple[str, str], dict[tuple[str, str], bool]] = {}

    def listed(self, body: Mapping[str, Any]) -> None:
        """An object of the watch's initial listing: remember its fingerprint (no pass: resume handles it)."""
        if (fp := fingerprint(body)) is not None:
            self._remember(_key(body), fp)
            self._track(body, fp)

    def _remember(self, key: ObjKey, fp: Hashable) -> None:
        _bounded_put(self.seen, key, fp)

    def _track(self, body: Mapping[str, Any], fp: Hashable | None) -> None:
        """Record whether a workload is ready (``fp`` None: it is gone) under its stack."""
        kind, ns, name = _key(body)
        stack = labels_of(body).get(LABEL_STACK)
        if kind not in WORKLOAD_KINDS or not stack:
            return
        if fp is None:
            of_stack = self.workloads.get((ns, stack), {})
            of_stack.pop((kind, name), None)
            if not of_stack:
                self.workloads.pop((ns, stack), None)  # a deleted stack leaves nothing behind
            return
        if len(self.workloads) >= LIMIT and (ns, stack) not in self.workloads:
            self.workloads.clear()
        self.workloads.setdefault((ns, stack), {})[(kind, name)] = _phase(fp) == "Ready"

    def worth_a_pass(self, type_: str, body: Mapping[str, Any]) -> bool:
        return self.assess(type_, body) is not None

    def assess(self, type_: str, body: Mapping[str, Any]) -> Urgency | None:
        """None: the event moves nothing a pass computes; else how soon the stack's pass should run."""
        key = _key(body)
        if type_ == "DELETED":
            self.seen.pop(key, None)
            self._track(body, None)
            # A pod that goes is replaced by its workload's controller, and its workload's status says so.
            return Urgency.NOW if not self.own.echo(type_, body) and key[0] != "Pod" else None
        mine = self.own.echo(type_, body)
        fp = fingerprint(body)
        if fp is None:
            return None if mine else Urgency.NOW
        before = self.seen.get(key, HEALTHY_POD if key[0] == "Pod" else None)
        self._remember(key, fp)
        self._track(body, fp)
        if mine or fp == before:
            return None
        return Urgency.PROGRESS if self._progress(body, before, fp) else Urgency.NOW

    def _progress(self, body: Mapping[str, Any], before: Hashable | None, fp: Hashable) -> bool:
        """A workload moved forward (same generation, from progressing to progressing or ready) while another
        workload of its stack is not ready yet."""
        kind, ns, name = _key(body)
        if kind not in WORKLOAD_KINDS or not isinstance(before, tuple) or not isinstance(fp, tuple):
            return False
        if before[0] != fp[0] or before[1] or fp[1] or _phase(before) != "Progressing":
            return False  # a new generation (hand edit), a deletion under way, a recovery or a regression
        if _phase(fp) not in ("Progressing", "Ready"):
            return False
        others = self.workloads.get((ns, labels_of(body).get(LABEL_STACK, "")), {})
        return any(not ready for workload, ready in others.items() if workload != (kind, name))


def _phase(fp: Hashable) -> str | None:
    """The phase in a workload's fingerprint (see :func:`fingerprint`)."""
    return str(fp[2]) if isinstance(fp, tuple) and len(fp) == 7 else None
