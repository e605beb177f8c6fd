"""What kopf writes on a stack to follow its handling: as little as it can, since each write is a request and an event.

**The diff base** (how kopf tells a create, a spec edit and nothing new apart). kopf keeps a copy of each object's
last handled spec and by default writes it into an annotation after every handled change: one more PATCH of each
new stack (and of each edit), and the spec twice in every watch event of the stack after that. The operator
already records what it handled: every status it writes says which generation it reconciled
(``status.observedGeneration``, which kstatus reads too). So the diff base is derived from that instead of stored:

- no ``observedGeneration``: never reconciled, kopf calls it a create;
- ``observedGeneration`` equal to ``metadata.generation``: the current spec was handled, nothing to do;
- an older ``observedGeneration``: the spec changed since; kopf calls it an update of ``spec``.

Nothing is written. Label and annotation changes do not move the generation and run no handler (the operator's
handlers follow ``spec`` only; the shard label and the backup flow's annotations run their passes themselves).
A stack whose pass failed keeps its older ``observedGeneration``, so the next event retries it, as kopf's own
retry does. The annotation an older operator wrote is left where it is and no longer read.

**Progress** (a handler that failed and waits for its retry) stays in annotations, as kopf writes them, without
kopf's ``addonstack.dev/kopf-managed`` marker. kopf adds the marker with the first record it stores, which for a
handler that succeeds at once is the record it removes again in the same patch: the marker alone was a PATCH of
every new stack. It tells other kopf-based operators that ``addonstack.dev/`` annotations are kopf's and not
changes to react to; nothing else handles AddonStacks, and stacks marked before keep their marker.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

import kopf

# The stand-in for a spec this process cannot see any more (the one of the generation last reconciled): any value
# differs from the live spec, so kopf's diff names ``spec`` as changed and the ``field="spec"`` handler runs.
_OLDER = "observedGeneration"


class GenerationDiffBase(kopf.DiffBaseStorage):
    """A diff base read from ``status.observedGeneration``, never written (see the module docstring)."""

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        """The spec, not copied. kopf builds an essence for every event of every watched kind (each child's too)
        and its default deep-copies the whole body, status and managed fields included: a copy guards an essence
        kept for later, and this one is kept by nobody (``store`` writes nothing; each event brings a new body).

        ``extra_fields`` (the fields handlers filter on) are not added: the only one is ``on_update``'s ``spec``,
        which the essence is. A handler filtering on a field outside ``spec`` would need :meth:`fetch` to know
        that field's last handled value, which nothing records."""
        return cast(kopf.BodyEssence, {"spec": body.get("spec") or {}})

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        status = body.get("status") or {}
        observed = status.get("observedGeneration")
        if observed is None:
            return None
        if int(observed) == int(body.get("metadata", {}).get("generation") or 0):
            return self.build(body=body)
        return cast(kopf.BodyEssence, {"spec": {_OLDER: int(observed)}})

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        """Nothing to write: the status the pass wrote is the record."""


class UnmarkedProgressStorage(kopf.AnnotationsProgressStorage):
    """kopf's progress annotations without its marker annotation (see the module docstring)."""

    def _store_marker(self, prefix: str, patch: kopf.Patch, body: kopf.Body) -> None:
        """No marker: kopf's ``store`` calls this after writing a record, and the marker alone was a PATCH."""

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        """The essence as it is, when it has nothing to clear. kopf clears both essences of every event of every
        watched kind (each child's too) of its own annotations, on a deep copy; the essences of
        :class:`GenerationDiffBase` are ``{"spec": ...}`` alone, so the copy (a Deployment's whole spec, two per
        event) was all that happened: 2 % of the operator's CPU in a burst of new stacks (bench/operator.py)."""
        if "metadata" in essence or "status" in essence:
            return super().clear(essence=essence)
        return essence
