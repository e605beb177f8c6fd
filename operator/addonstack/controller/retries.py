"""How one request to the API server fails and is sent again: lightkube's errors, and retries on 429 and 5xx.

Every request ``cluster.Cluster`` sends goes through :func:`with_retries` (``Cluster._send``); the watch streams
(``childwatch.py``) and kopf retry on their own. Most are answered at the first try, so the first try runs bare
and tenacity is built only after an answer worth retrying: around every request, tenacity's machinery (its
retrying object, attempt managers and futures) was about 4 % of the operator's CPU in a burst of new stacks
(py-spy, docs/performance.md), where the API server answered nothing but 2xx.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

__all__ = ["RETRY_ATTEMPTS", "api_errors", "retryable", "with_retries"]

T = TypeVar("T")
RETRY_ATTEMPTS = 5  # a request answered 429 or 5xx is sent again after random waits up to 0.25, 0.5, 1, 2 s

# The HTTP library's status error that ApiError extends (httpx or httpx2, by lightkube version).
_HTTPStatusError: type[Exception] = ApiError.__mro__[1]


@contextlib.contextmanager
def api_errors() -> Iterator[None]:
    """Every HTTP error as lightkube's ApiError. Errors without a JSON Status body (a path the server does not
    serve, e.g. a CRD that is not installed, answers a plain-text 404) otherwise surface as the HTTP library's
    own error, which callers checking ``ApiError`` would miss."""
    try:
        yield
    except ApiError:
        raise
    except _HTTPStatusError as exc:
        resp = exc.response  # type: ignore[attr-defined]
        message = f"{resp.status_code} {resp.reason_phrase}"
        raise ApiError(status=Status(code=resp.status_code, reason=resp.reason_phrase, message=message)) from exc


def retryable(exc: BaseException) -> bool:
    """Answers worth sending again: the API server is throttling (429) or failing for now (5xx)."""
    code = exc.status.code if isinstance(exc, ApiError) else None
    return code is not None and (code == 429 or code >= 500)


async def with_retries(send: Callable[[], Awaitable[T]]) -> T:
    """``send()``, sent again with random exponential waits while it is answered 429 or 5xx, up to
    :data:`RETRY_ATTEMPTS` tries in all. The first try's failure is handed to tenacity as its own first attempt's,
    so tenacity waits before the second exactly as if it had sent the first."""
    try:
        return await send()
    except ApiError as exc:
        if not retryable(exc):
            raise
        first: ApiError | None = exc
    retrying = AsyncRetrying(
        retry=retry_if_exception(retryable),
        wait=wait_random_exponential(multiplier=0.25, max=8),
        stop=stop_after_attempt(RETRY_ATTEMPTS),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            if first is not None:  # attempt 1: sent above
                failed, first = first, None
                raise failed
            return await send()
    raise AssertionError("unreachable")  # pragma: no cover
