"""Run the operator: kopf's event loop with our registry and settings."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace

import kopf

from addonstack.controller.handlers import State, build_registry
from addonstack.controller.settings import OperatorSettings


async def operator(settings: OperatorSettings, stop_flag: asyncio.Event | None = None) -> None:
    """The operator as a coroutine (tests run it in-process)."""
    if settings.peering and settings.priority is None:
        # kopf's peering is no lock: peers of equal priority all pause. A random priority per process makes
        # exactly one replica active and the others hot standbys that resume when it leaves or stops renewing.
        settings = replace(settings, priority=random.SystemRandom().randint(1, 2**31 - 1))
    registry = build_registry(settings)
    memo = kopf.Memo(state=State(settings))
    await kopf.operator(
        registry=registry,
        memo=memo,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority or 0,
        liveness_endpoint=(
            f"http://{settings.health_host}:{settings.health_port}/healthz" if settings.health_port else None
        ),
        stop_flag=stop_flag,
    )


def run(settings: OperatorSettings, verbose: bool = False) -> None:
    # kopf's formatter names the object in its per-object messages ("[ns/name] Handler ... succeeded").
    kopf.configure(verbose=verbose, log_prefix=True)
    if not verbose:
        # The HTTP client logs every request at INFO: thousands of lines per resync of many stacks, and a
        # measurable share of the operator's CPU (bench/operator.py). Its warnings and errors still show.
        for name in ("httpx", "httpx2", "httpcore"):
            logging.getLogger(name).setLevel(logging.WARNING)
    asyncio.run(operator(settings))
