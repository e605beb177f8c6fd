"""The validating admission webhook on the real control plane.

The operator runs in-process with kopf's webhook server on 127.0.0.1 (a certificate from the dev PKI);
kopf creates the ValidatingWebhookConfiguration with a URL client config, and the API server calls it.
Bad stacks are rejected with the rule's message (the same text ``addonstack validate`` prints offline),
good ones are admitted, and a second stack that would create the same children in a namespace is refused.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.admissionregistration_v1 import ValidatingWebhookConfiguration
from lightkube.resources.core_v1 import Namespace
from lightkube.types import PatchType

from addonstack.catalog.loader import load_catalog
from addonstack.cli.main import cli
from addonstack.cli.output import BAD_INPUT
from addonstack.controller.cluster import AddonStackResource
from addonstack.controller.settings import OperatorSettings, WebhookSettings
from addonstack.devcluster.pki import ensure_pki, issue_serving_cert
from addonstack.plan.spec import AddonStackSpec
from addonstack.plan.validate import check_spec
from tests.cluster.operator_harness import TEST_DEFAULTS, operator_thread, stack, wait_for

pytestmark = pytest.mark.cluster
DENIED = "denied the request"
MERGE = PatchType.MERGE


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def operator_with_webhook(
    kubeconfig: Path, hook: WebhookSettings, namespaces: tuple[str, ...] = ()
) -> Iterator[OperatorSettings]:
    settings = OperatorSettings(
        namespaces=namespaces,
        defaults=TEST_DEFAULTS,
        drift_interval=4.0,
        health_port=None,
        kubeconfig=str(kubeconfig),
        webhook=hook,
    )
    with operator_thread(settings):
        yield settings


@pytest.fixture(scope="module")
def hook(tmp_path_factory: pytest.TempPathFactory) -> WebhookSettings:
    pki_dir = tmp_path_factory.mktemp("webhook-pki")
    pki = ensure_pki(pki_dir)
    cert = issue_serving_cert(pki.ca, pki_dir, "webhook", dns=["localhost"], ips=["127.0.0.1"])
    return WebhookSettings(
        addr="127.0.0.1",
        host="127.0.0.1",
        port=_free_port(),
        certfile=str(cert.cert),
        pkeyfile=str(cert.key),
        cafile=str(pki.ca.cert),
        config_name=f"addonstack-test-{uuid.uuid4().hex[:6]}.addonstack.dev",
    )


def _probe_ns(client: Client) -> str:
    name = f"t-admission-probe-{uuid.uuid4().hex[:6]}"
    client.create(Namespace(metadata=ObjectMeta(name=name, labels={"addonstack.dev/test": "true"})))
    return name


@pytest.fixture(scope="module")
def webhook(client: Client, kubeconfig: Path, hook: WebhookSettings) -> Iterator[WebhookSettings]:
    """The operator with its webhook, once the API server calls it (a dry-run create is denied)."""
    with operator_with_webhook(kubeconfig, hook):

        def configured() -> bool:
            cfg = client.get(ValidatingWebhookConfiguration, hook.config_name)
            return any(
                (w.clientConfig.url or "").startswith(f"https://127.0.0.1:{hook.port}") and w.clientConfig.caBundle
                for w in cfg.webhooks or []
            )

        wait_for("kopf to write the ValidatingWebhookConfiguration", configured, timeout=60)
        ns = _probe_ns(client)
        bad = stack("probe", ns, {"services": ["qdrant"], "overrides": {"qdrant": {"replicas": 5}}})

        def denied() -> str | bool:
            try:
                client.create(codecs.from_dict(bad), dry_run=True)
            except ApiError as exc:
                return DENIED in (exc.status.message or "") or f"other error: {exc.status.message}"
            return "admitted"

        wait_for("the API server to call the webhook", denied, timeout=60)
        try:
            yield hook
        finally:
            with contextlib.suppress(ApiError):
                client.delete(Namespace, ns)


def _create(client: Client, obj: dict[str, Any]) -> str | None:
    """None when admitted, else the API server's message."""
    try:
        client.create(codecs.from_dict(obj))
    except ApiError as exc:
        return exc.status.message or str(exc.status.code)
    return None


def _expected(spec: dict[str, Any]) -> list[str]:
    return check_spec(load_catalog(), AddonStackSpec.model_validate(spec))


BAD_SPECS: dict[str, dict[str, Any]] = {
    "conflict": {"services": ["adguard-home", "pihole"]},
    "gpu-off": {"services": ["comfyui"], "gpu": False},
    "override-outside-stack": {"services": ["qdrant"], "overrides": {"n8n": {"imageTag": "1.0.0"}}},
    "replicas-not-scalable": {"services": ["qdrant"], "overrides": {"qdrant": {"replicas": 3}}},
    "storage-without-volume": {"services": ["browserless"], "overrides": {"browserless": {"storageSize": "2Gi"}}},
    "prebuilt-unknown": {"services": ["qdrant"], "prebuiltImages": {"no-such-service": "registry.example/x:1"}},
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_webhook_rejects_with_the_rules_message(
    client: Client, webhook: WebhookSettings, namespace: str, case: str, tmp_path: Path
) -> None:
    spec = BAD_SPECS[case]
    expected = _expected(spec)
    assert expected, f"{case}: the pure rules find nothing"
    message = _create(client, stack(case, namespace, spec))
    assert message is not None, f"{case}: admitted"
    assert DENIED in message
    for problem in expected:
        assert problem in message
    with pytest.raises(ApiError) as missing:
        client.get(AddonStackResource, case, namespace=namespace)
    assert missing.value.status.code == 404

    # The offline command prints the same problems for the same manifest.
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(stack(case, namespace, spec)))
    result = CliRunner().invoke(cli, ["validate", "-f", str(path)])
    assert result.exit_code == BAD_INPUT, result.output
    for problem in expected:
        assert problem in " ".join(result.output.split()), result.output


def test_schema_rules_stay_in_the_crd(client: Client, webhook: WebhookSettings, namespace: str) -> None:
    """Unknown ids and duplicates are the API server's own answer (schema), before any webhook runs."""
    for name, spec in {
        "unknown": {"services": ["no-such-service"]},
        "dupes": {"services": ["qdrant", "qdrant"]},
        "pack": {"services": ["qdrant"], "skillPacks": ["no-such-pack"]},
    }.items():
        message = _create(client, stack(name, namespace, spec))
        assert message is not None, f"{name}: admitted"
        assert DENIED not in message, f"{name}: expected a schema error, got the webhook: {message}"
        assert "spec." in message


def test_good_stack_admitted_and_spec_free_updates_pass(
    client: Client, webhook: WebhookSettings, namespace: str
) -> None:
    spec = {"services": ["qdrant", "searxng"], "overrides": {"qdrant": {"storageSize": "1Gi"}}, "gpu": False}
    assert _expected(spec) == []
    assert _create(client, stack("good", namespace, spec)) is None
    obj = client.get(AddonStackResource, "good", namespace=namespace)
    assert obj.spec["services"] == ["qdrant", "searxng"]
    # A bad spec change to an admitted stack is refused; a label change (no spec change) is not.
    bad = {"spec": {"overrides": {"qdrant": {"replicas": 4}}}}
    with pytest.raises(ApiError) as refused:
        client.patch(AddonStackResource, "good", bad, namespace=namespace, patch_type=MERGE)
    assert DENIED in (refused.value.status.message or "")
    client.patch(
        AddonStackResource, "good", {"metadata": {"labels": {"team": "a"}}}, namespace=namespace, patch_type=MERGE
    )
    assert client.get(AddonStackResource, "good", namespace=namespace).to_dict()["metadata"]["labels"]["team"] == "a"


def test_second_stack_with_the_same_children_is_refused(
    client: Client, webhook: WebhookSettings, namespace: str
) -> None:
    assert _create(client, stack("first", namespace, {"services": ["qdrant"]})) is None
    message = _create(client, stack("second", namespace, {"services": ["qdrant", "searxng"]}))
    assert message is not None and DENIED in message
    assert "AddonStack 'first'" in message and "Service/qdrant" in message
    assert "another namespace" in message
    # Disjoint children in the same namespace are fine, and so is the same service elsewhere.
    assert _create(client, stack("third", namespace, {"services": ["searxng"]})) is None
    other = _probe_ns(client)
    try:
        assert _create(client, stack("second", other, {"services": ["qdrant", "searxng"]})) is None
        # Growing into another stack's children is refused as an update too.
        with pytest.raises(ApiError) as refused:
            client.patch(
                AddonStackResource,
                "third",
                {"spec": {"services": ["searxng", "qdrant"]}},
                namespace=namespace,
                patch_type=MERGE,
            )
        assert "AddonStack 'first'" in (refused.value.status.message or "")
    finally:
        with contextlib.suppress(ApiError):
            client.delete(Namespace, other)


def test_webhook_is_fail_open_and_removed_when_the_operator_stops(
    client: Client, kubeconfig: Path, hook: WebhookSettings, namespace: str
) -> None:
    """After a graceful stop kopf empties its configuration; while running, failures are ignored."""
    hook2 = WebhookSettings(**{**hook.__dict__, "port": _free_port(), "config_name": f"x-{hook.config_name}"})
    with operator_with_webhook(kubeconfig, hook2, namespaces=(namespace,)):
        hooks = wait_for(
            "the webhook configuration",
            lambda: client.get(ValidatingWebhookConfiguration, hook2.config_name).webhooks,
            timeout=60,
        )
        assert {w.failurePolicy for w in hooks} == {"Ignore"}
        assert all(w.clientConfig.service is None and w.clientConfig.url for w in hooks)
    cfg = client.get(ValidatingWebhookConfiguration, hook2.config_name)
    assert not cfg.webhooks
    client.delete(ValidatingWebhookConfiguration, hook2.config_name)
