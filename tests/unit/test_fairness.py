"""Edits before creates: the order in which waiting reconciles get a slot (no cluster, real asyncio)."""

from __future__ import annotations

import asyncio

from addonstack.controller.fairness import Cause, PrioritySlots, priority, resync_due


def test_an_edit_outranks_a_create_and_a_stack_without_status_counts_as_a_create() -> None:
    assert priority(Cause.EDIT, True) < priority(Cause.CHILD, True) < priority(Cause.CREATE, False)
    assert priority(Cause.CREATE, False) < priority(Cause.RESYNC, True)
    assert priority(Cause.RESYNC, False) == priority(Cause.CREATE, False) == Cause.CREATE


def test_a_freed_slot_goes_to_the_edit_queued_behind_a_thousand_creates() -> None:
    async def scenario() -> tuple[list[str], int]:
        slots = PrioritySlots(2)
        order: list[str] = []
        gate = asyncio.Event()

        async def work(name: str, rank: int) -> None:
            async with slots.slot(rank):
                order.append(name)
                await gate.wait()

        tasks = [asyncio.create_task(work(f"create-{i}", Cause.CREATE)) for i in range(1000)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(work("edit", Cause.EDIT)))
        await asyncio.sleep(0)
        assert order == ["create-0", "create-1"]  # the two slots are taken; 999 waiters queue
        gate.set()
        await asyncio.gather(*tasks)
        return order, slots.free

    order, free = asyncio.run(scenario())
    assert order[2] == "edit", order[:5]
    assert order[3:6] == ["create-2", "create-3", "create-4"], "first come first served within a priority"
    assert free == 2 and len(order) == 1001


def test_a_cancelled_waiter_leaves_no_slot_behind() -> None:
    async def scenario() -> int:
        slots = PrioritySlots(1)
        await slots.acquire(Cause.CREATE)
        waiter = asyncio.create_task(slots.acquire(Cause.EDIT))
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        slots.release()
        assert not slots.waiters
        async with slots.slot(Cause.CREATE):
            pass
        return slots.free

    assert asyncio.run(scenario()) == 1


def test_the_drift_timer_skips_a_stack_a_full_pass_just_covered_or_one_already_being_reconciled() -> None:
    interval = 60.0
    assert resync_due(None, 100.0, interval, busy=False), "never passed over in this process: due"
    assert not resync_due(90.0, 100.0, interval, busy=False), "a full pass 10 s ago"
    assert resync_due(70.0, 100.0, interval, busy=False), "half an interval ago: due again"
    assert not resync_due(None, 100.0, interval, busy=True), "a pass is running or queued for it"
