"""Which API answers are sent again, and that they are (tenacity with backoff, through Cluster._send and retries.py)."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from lightkube import AsyncClient
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from addonstack.controller.cluster import Cluster
from addonstack.controller.retries import RETRY_ATTEMPTS, retryable


def answer(code: int) -> ApiError:
    return ApiError(status=Status(code=code, message=f"HTTP {code}"))


def test_throttling_and_server_errors_are_retried_and_client_errors_are_not() -> None:
    assert retryable(answer(429)) and retryable(answer(500)) and retryable(answer(503))
    assert not any(retryable(answer(code)) for code in (400, 403, 404, 409, 422))
    assert not retryable(ValueError("not an API answer"))


def _cluster() -> Cluster:
    return Cluster(cast(AsyncClient, None), qps=1000, burst=10)  # no client: _send runs the call it is given


def test_a_throttled_request_is_sent_again_until_it_succeeds() -> None:
    sent: list[int] = []

    async def flaky() -> str:
        sent.append(1)
        if len(sent) < 3:
            raise answer(429 if len(sent) == 1 else 503)
        return "ok"

    assert asyncio.run(_cluster()._send(flaky)) == "ok"
    assert len(sent) == 3


def test_a_lasting_throttle_is_sent_exactly_the_attempts_allowed() -> None:
    """The first try runs outside tenacity and its failure is handed over as tenacity's first attempt: a request
    answered 429 every time is still sent RETRY_ATTEMPTS times in all, not one more."""
    sent: list[int] = []

    async def throttled() -> str:
        sent.append(1)
        raise answer(429)

    with pytest.raises(ApiError) as raised:
        asyncio.run(_cluster()._send(throttled))
    assert raised.value.status.code == 429
    assert len(sent) == RETRY_ATTEMPTS


def test_a_conflict_is_not_retried_and_a_lasting_failure_gives_up() -> None:
    sent: list[int] = []

    async def conflict() -> str:
        sent.append(1)
        raise answer(409)

    with pytest.raises(ApiError):
        asyncio.run(_cluster()._send(conflict))
    assert len(sent) == 1


def test_gather_all_cancels_and_awaits_the_others_when_one_fails() -> None:
    """A failed LIST must not leave its siblings running: at a stop they met the closed client and kopf,
    which re-raises every task still running when it stops, reported a crash (tests/cluster/test_claims.py)."""
    from addonstack.controller.cluster import gather_all

    finished: list[str] = []

    async def slow() -> str:
        await asyncio.sleep(5)
        finished.append("slow")
        return "slow"

    async def failing() -> str:
        await asyncio.sleep(0)
        raise RuntimeError("list failed")

    async def main() -> set[asyncio.Task[object]]:
        try:
            await gather_all(slow(), failing())
        except RuntimeError as exc:
            assert str(exc) == "list failed"
        else:
            raise AssertionError("the failure was swallowed")
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(main()) == set(), "a sibling task outlived the failed gather"
    assert finished == []

    async def ok() -> list[object]:
        return await gather_all(asyncio.sleep(0, "a"), asyncio.sleep(0, "b"))

    assert asyncio.run(ok()) == ["a", "b"]
