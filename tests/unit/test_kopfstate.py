"""kopf's diff base read from the stack's status: a create, a spec edit and nothing new, with no write."""

from __future__ import annotations

from typing import Any

import kopf

from addonstack.controller.kopfstate import GenerationDiffBase

SPEC = {"services": ["gotify", "n8n"], "size": "small"}


def body(generation: int, observed: int | None, labels: dict[str, str] | None = None) -> kopf.Body:
    raw: dict[str, Any] = {
        "apiVersion": "addonstack.dev/v1alpha1",
        "kind": "AddonStack",
        "metadata": {"name": "s", "namespace": "n", "generation": generation, "labels": labels or {}},
        "spec": SPEC,
    }
    if observed is not None:
        raw["status"] = {"observedGeneration": observed, "summary": "2/2"}
    return kopf.Body(raw)


def test_never_reconciled_is_a_create() -> None:
    assert GenerationDiffBase().fetch(body=body(1, None)) is None


def test_current_generation_handled_is_no_change() -> None:
    b = body(3, 3, labels={"addonstack.dev/shard-bucket": "7"})
    storage = GenerationDiffBase()
    assert storage.fetch(body=b) == storage.build(body=b) == {"spec": SPEC}


def test_older_generation_is_a_spec_change() -> None:
    b = body(4, 3)
    storage = GenerationDiffBase()
    old, new = storage.fetch(body=b), storage.build(body=b, extra_fields=[("spec",)])
    assert old is not None and old["spec"] != new["spec"]
    assert new == {"spec": SPEC}


def test_nothing_is_written() -> None:
    patch = kopf.Patch()
    storage = GenerationDiffBase()
    b = body(1, None)
    storage.store(body=b, patch=patch, essence=storage.build(body=b))
    assert not patch


def test_children_cost_no_copy() -> None:
    """kopf builds an essence for every child's event too: it is the spec itself, not a copy of the body."""
    assert GenerationDiffBase().build(body=body(1, 1))["spec"] is SPEC


def test_quiet_filter_keeps_the_stack_handlers() -> None:
    import logging

    from addonstack.controller.run import _quiet_event_handlers

    def rec(msg: str, level: int = logging.INFO) -> logging.LogRecord:
        return logging.LogRecord("kopf.objects", level, __file__, 1, msg, None, None)

    assert not _quiet_event_handlers(rec("Handler 'register.<locals>.on_child' succeeded."))
    assert not _quiet_event_handlers(rec("Handler 'on_stack_event' succeeded."))
    assert _quiet_event_handlers(rec("Handler 'on_create' succeeded."))
    assert _quiet_event_handlers(rec("Timer 'on_timer' succeeded."))
    assert _quiet_event_handlers(rec("Handler 'register.<locals>.on_child' failed.", logging.ERROR))


def test_progress_is_stored_without_the_marker() -> None:
    from addonstack.controller.kopfstate import UnmarkedProgressStorage

    storage = UnmarkedProgressStorage(prefix="addonstack.dev")
    b, patch = body(1, None), kopf.Patch()
    storage.store(key="on_create", record={"retries": 1, "success": False, "failure": None}, body=b, patch=patch)
    written = dict(patch["metadata"]["annotations"])
    assert list(written) == ["addonstack.dev/on_create"]  # no addonstack.dev/kopf-managed
    raw = {**body(1, None), "metadata": {**body(1, None)["metadata"], "annotations": written}}
    # as the next event brings it back, kopf reads its record
    assert storage.fetch(key="on_create", body=kopf.Body(raw)) == {"retries": 1, "success": False}


def test_progress_storage_clears_without_copying_a_spec_only_essence() -> None:
    """kopf clears the essence of every event of every child: a spec-only one is returned as it is."""
    from addonstack.controller.kopfstate import UnmarkedProgressStorage

    storage = UnmarkedProgressStorage(prefix="addonstack.dev")
    essence = GenerationDiffBase().build(body=body(1, 1))
    assert storage.clear(essence=essence) is essence
    # an essence with kopf's annotations is still cleared of them, on a copy
    marked = kopf.BodyEssence(
        {"metadata": {"annotations": {"addonstack.dev/on_create": "{}", "keep": "1"}}, "spec": SPEC}
    )
    cleared = storage.clear(essence=marked)
    assert cleared["metadata"]["annotations"] == {"keep": "1"}
    assert marked["metadata"]["annotations"]["addonstack.dev/on_create"] == "{}"
