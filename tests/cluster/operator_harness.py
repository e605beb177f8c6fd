"""Run the operator in-process against the test control plane, and small polling helpers."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

from addonstack.controller.cluster import AddonStackResource
from addonstack.controller.run import operator
from addonstack.controller.settings import OperatorSettings
from addonstack.render.crd import render_crd
from addonstack.render.stack import StackDefaults

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 90, interval: float = 0.5) -> T:
    """Poll ``probe`` until it returns something truthy; fail with ``what`` and the last value."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = probe()
        except ApiError as exc:
            last = f"ApiError {exc.status.code}: {exc.status.message}"
        if last and not isinstance(last, str):
            return last  # type: ignore[return-value]
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def install_crd(client: Client) -> None:
    client.apply(codecs.from_dict(render_crd()), field_manager="addonstack-tests", force=True)

    def established() -> bool:
        crd = client.get(CustomResourceDefinition, "addonstacks.addonstack.dev")
        return any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or []))

    wait_for("the AddonStack CRD to be established", established, timeout=30)


TEST_DEFAULTS = StackDefaults(
    database_host="postgres.platform.example",
    database_admin_secret="pg-admin",
    deletion_policy="Retain",
)


@contextlib.contextmanager
def running_operator(
    kubeconfig: Path,
    drift_interval: float = 4.0,
    peering: str | None = None,
    defaults: StackDefaults = TEST_DEFAULTS,
    dry_run: bool = False,
) -> Iterator[OperatorSettings]:
    """The real operator (kopf + lightkube) in a thread, stopped on exit."""
    settings = OperatorSettings(
        defaults=defaults,
        drift_interval=drift_interval,
        health_port=None,
        kubeconfig=str(kubeconfig),
        peering=peering,
        dry_run=dry_run,
    )
    with operator_thread(settings):
        yield settings


@contextlib.contextmanager
def operator_thread(settings: OperatorSettings) -> Iterator[OperatorSettings]:
    """Run the operator with ``settings`` in a thread until the block exits; fail if it crashed."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def main() -> None:
        try:
            asyncio.run(operator(settings, stop_flag=stop))
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=main, name="addonstack-operator", daemon=True)
    thread.start()
    try:
        yield settings
    finally:
        stop.set()
        thread.join(timeout=30)
    assert not errors, "operator crashed: " + "".join(traceback.format_exception(errors[0]))


def stack(name: str, namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "addonstack.dev/v1alpha1",
        "kind": "AddonStack",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def get_stack(client: Client, name: str, namespace: str) -> dict[str, Any]:
    obj: dict[str, Any] = client.get(AddonStackResource, name, namespace=namespace).to_dict()
    return obj


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def wait_ready(client: Client, name: str, namespace: str, timeout: float = 120) -> dict[str, Any]:
    def probe() -> dict[str, Any] | str:
        obj = get_stack(client, name, namespace)
        ready = condition(obj, "Ready")
        gen = obj["metadata"].get("generation")
        if ready.get("status") == "True" and (obj.get("status") or {}).get("observedGeneration") == gen:
            return obj
        return f"Ready={ready.get('status')} {ready.get('reason')}: {ready.get('message')}"

    return wait_for(f"stack {namespace}/{name} to become Ready", probe, timeout=timeout)


def admin_secret(client: Client, ns: str) -> None:
    """The platform PostgreSQL admin Secret the database Jobs reference (kwok never runs them)."""
    client.apply(
        codecs.from_dict(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": "pg-admin", "namespace": ns},
                "stringData": {"username": "postgres", "password": "admin-pw"},
            }
        ),
        force=True,
    )


def stack_gone(client: Client, name: str, ns: str) -> bool:
    """True once the AddonStack is deleted (finalizers done)."""
    try:
        get_stack(client, name, ns)
    except ApiError as exc:
        return exc.status.code == 404
    return False
