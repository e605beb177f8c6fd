"""Run the operator: kopf's event loop with our registry and settings."""

from __future__ import annotations

import asyncio
import logging

import kopf

from addonstack.controller.handlers import State, build_registry
from addonstack.controller.settings import OperatorSettings


async def operator(settings: OperatorSettings, stop_flag: asyncio.Event | None = None) -> None:
    """The operator as a coroutine (tests run it in-process)."""
    registry = build_registry(settings)
    memo = kopf.Memo(state=State(settings))
    await kopf.operator(
        registry=registry,
        memo=memo,
        clusterwide=not settings.namespaces,
        namespaces=list(settings.namespaces),
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=settings.priority,
        liveness_endpoint=(
            f"http://{settings.health_host}:{settings.health_port}/healthz" if settings.health_port else None
        ),
        stop_flag=stop_flag,
    )


def run(settings: OperatorSettings, verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    asyncio.run(operator(settings))
