"""Shards without a cluster: fixed buckets, jump hashing, selectors, and the handover's blocked buckets."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from addonstack.controller.shards import BUCKETS, Handover, Holder, Shard, blocked_buckets, bucket_of, holder_of, jump


def test_every_bucket_has_exactly_one_shard_and_the_split_is_even() -> None:
    for count in (1, 2, 3, 5, 8):
        shares = [Shard(i, count).buckets() for i in range(count)]
        assert sum(len(s) for s in shares) == BUCKETS and frozenset().union(*shares) == frozenset(range(BUCKETS))
        assert max(len(s) for s in shares) <= 1.35 * BUCKETS / count, [len(s) for s in shares]


def test_adding_a_shard_moves_buckets_only_to_the_new_one() -> None:
    for count in (1, 2, 4, 7):
        moved = [b for b in range(BUCKETS) if jump(b, count) != jump(b, count + 1)]
        assert all(jump(b, count + 1) == count for b in moved)
        assert len(moved) < 2 * BUCKETS / (count + 1)


def test_stacks_spread_over_buckets_and_the_selector_names_the_shards_buckets() -> None:
    counts = Counter(Shard(0, 2).owns(f"ns-{i}", "stack") for i in range(2000))
    assert 0.8 < counts[True] / counts[False] < 1.25, counts
    assert bucket_of("a", "b") == bucket_of("a", "b") and 0 <= bucket_of("a", "c") < BUCKETS
    sel = Shard(1, 2).selector()
    assert sel.startswith("addonstack.dev/shard-bucket in (") and str(sorted(Shard(1, 2).buckets())[0]) in sel


@pytest.mark.parametrize(("index", "count"), [(2, 2), (-1, 2), (0, 0), (0, BUCKETS + 1)])
def test_impossible_shards_are_refused_naming_the_flags(index: int, count: int) -> None:
    with pytest.raises(ValueError, match="--shard-index"):
        Shard(index, count)


def test_a_new_configuration_waits_for_the_older_one_and_not_the_other_way_round() -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    old = [Holder(f"old-{i}", Shard(i, 2), t0) for i in range(2)]
    new = Holder("new-2", Shard(2, 3), t0 + timedelta(seconds=30))
    blocked = blocked_buckets(new, old)
    assert blocked == Shard(2, 3).buckets(), "every bucket the new shard takes over is still served by an old one"
    assert blocked_buckets(old[0], [*old, new]) == frozenset(), "the older configuration keeps serving"
    peer = Holder("old-0-standby", Shard(0, 2), t0 - timedelta(seconds=5))
    assert blocked_buckets(old[0], [peer]) == frozenset(), "replicas of one shard leave that to kopf peering"


def test_leases_expire_and_a_process_serves_nothing_before_it_has_read_them() -> None:
    now = datetime(2026, 1, 1, 12, tzinfo=UTC)
    h = Handover(Shard(1, 2), "ops", name="me", since=now)
    assert not any(h.may_serve(f"ns-{i}", "s") for i in range(50)), "nothing before the first read of the Leases"
    other = Handover(Shard(0, 1), "ops", name="old", since=now - timedelta(hours=1)).lease(now - timedelta(seconds=5))
    assert holder_of(other, now) is not None and holder_of(other, now + timedelta(minutes=5)) is None
    h.update([other, h.lease(now)], now)
    assert h.blocked == Shard(1, 2).buckets()
    h.update([other], now + timedelta(minutes=5))  # the old single shard stopped renewing
    assert h.blocked == frozenset() and any(h.may_serve(f"ns-{i}", "s") for i in range(50))
