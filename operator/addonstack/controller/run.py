"""Run the operator: kopf's event loop with our registry and settings."""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
import random
from collections.abc import Callable
from dataclasses import replace

import kopf

from addonstack.catalog.loader import load_catalog, use_catalog_dir
from addonstack.controller.handlers import State, build_registry
from addonstack.controller.settings import OperatorSettings


async def operator(settings: OperatorSettings, stop_flag: asyncio.Event | None = None) -> None:
    """The operator as a coroutine (tests run it in-process)."""
    if settings.peering and settings.priority is None:
        # kopf's peering is no lock: peers of equal priority all pause. A random priority per process makes
        # exactly one replica active and the others hot standbys that resume when it leaves or stops renewing.
        settings = replace(settings, priority=random.SystemRandom().randint(1, 2**31 - 1))
    use_catalog_dir(settings.catalog_dir)
    load_catalog()  # a provider's bad entry (CatalogError: file and field) stops the start, before any write
    registry = build_registry(settings)
    state = State(settings)
    memo = kopf.Memo(state=state)
    try:
        await _kopf(settings, registry, memo, stop_flag)
    finally:
        # Only now: kopf has cancelled and awaited every handler and task that could still send a request.
        if state.cluster is not None:
            await state.cluster.close()


async def _kopf(
    settings: OperatorSettings, registry: kopf.OperatorRegistry, memo: kopf.Memo, stop_flag: asyncio.Event | None
) -> None:
    await kopf.operator(
        registry=registry,
        memo=memo,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=settings.peering is None,
        peering_name=settings.peering_name,
        priority=settings.priority or 0,
        liveness_endpoint=(
            f"http://{settings.health_host}:{settings.health_port}/healthz" if settings.health_port else None
        ),
        stop_flag=stop_flag,
    )


TRIM_INTERVAL = 15.0


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where there is none (musl, macOS)."""
    try:
        trim: Callable[[int], int] = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


async def _trim_heap() -> None:
    """Hand the heap that a burst of reconciles grew back to the OS now and then.

    Response bodies and rendered objects are large allocations from the C heap; after a burst (hundreds of
    new stacks at once) glibc keeps the freed pages, so RSS stays at its peak. ``malloc_trim(0)`` returns
    them (a few ms per call); bench/operator.py measures RSS with it.
    """
    trim = _malloc_trim()
    while trim is not None:
        await asyncio.sleep(TRIM_INTERVAL)
        trim(0)


async def _serve(settings: OperatorSettings) -> None:
    trimmer = asyncio.create_task(_trim_heap())
    try:
        await operator(settings)
    finally:
        trimmer.cancel()


# kopf logs every handler's success at INFO, the watch handlers' too: one line per event of every child (about 60
# per new 5-service stack, 12,000 in a burst of 200), formatted and written by the operator's one thread. The
# handlers that do the work (create, update, resume, timer, delete) keep their lines; failures always show.
_EVENT_HANDLER_SUCCESS = ("'register.<locals>.on_child' succeeded.", "'on_stack_event' succeeded.")


def _quiet_event_handlers(record: logging.LogRecord) -> bool:
    return not (record.levelno == logging.INFO and str(record.msg).endswith(_EVENT_HANDLER_SUCCESS))


def run(settings: OperatorSettings, verbose: bool = False) -> None:
    # kopf's formatter names the object in its per-object messages ("[ns/name] Handler ... succeeded").
    kopf.configure(verbose=verbose, log_prefix=True)
    if not verbose:
        # The HTTP client logs every request at INFO: thousands of lines per resync of many stacks, and a
        # measurable share of the operator's CPU (bench/operator.py). Its warnings and errors still show.
        for name in ("httpx", "httpx2", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
        logging.getLogger("kopf.objects").addFilter(_quiet_event_handlers)
    asyncio.run(_serve(settings))
