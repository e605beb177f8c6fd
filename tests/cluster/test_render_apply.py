"""Offline render output meets the real API server; Traefik Middlewares and name conflicts live.

`addonstack render --target k8s` must produce objects the API server accepts as they are (server-side
dry run, strict field validation). Two stacks in one namespace that both deploy a service would fight
over objects named by the service id: the operator lets the first owner keep them and says so in the
newcomer's status.
"""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from lightkube import Client, codecs
from lightkube.resources.core_v1 import Service

from addonstack.catalog.loader import load_catalog
from addonstack.cli.main import cli
from addonstack.controller.cluster import TraefikMiddleware
from tests.cluster.operator_harness import (
    condition,
    get_stack,
    running_operator,
    stack,
    wait_for,
    wait_ready,
)
from tests.figures import record

pytestmark = pytest.mark.cluster
KUBECTL = Path.home() / ".cache/addonstack/tools/2.2.2/kubectl"

# Traefik's Middleware CRD, cut down to the one middleware we emit (StripPrefix) but structural and
# strict like the real one, so a misspelt field is pruned or rejected rather than silently kept.
TRAEFIK_MIDDLEWARE_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "middlewares.traefik.io"},
    "spec": {
        "group": "traefik.io",
        "scope": "Namespaced",
        "names": {"kind": "Middleware", "plural": "middlewares", "singular": "middleware"},
        "versions": [
            {
                "name": "v1alpha1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "stripPrefix": {
                                        "type": "object",
                                        "properties": {
                                            "prefixes": {"type": "array", "items": {"type": "string"}},
                                            "forceSlash": {"type": "boolean"},
                                        },
                                    }
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture(scope="module", autouse=True)
def traefik_crd(client: Client) -> None:
    client.apply(codecs.from_dict(TRAEFIK_MIDDLEWARE_CRD), force=True)

    def established() -> bool:
        from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

        crd = client.get(CustomResourceDefinition, "middlewares.traefik.io")
        return any(x.type == "Established" and x.status == "True" for x in (crd.status.conditions or []))

    wait_for("the Middleware CRD", established, timeout=30)


def test_offline_render_is_accepted_by_the_api_server(
    client: Client, kubeconfig: Path, namespace: str, tmp_path: Path
) -> None:
    cat = load_catalog()
    ids = sorted(s.id for s in cat.services.values() if not s.platform_provided)
    manifest = stack("everything", namespace, {
        "services": ids,
        "prebuiltImages": {i: f"registry.example.com/t/{i}:1.0.0" for i in ids if not cat.services[i].image},
        "gpu": True,
        "allowExperimental": True,
        "ingress": {"className": "traefik", "host": "apps.example.com", "clusterIssuer": "letsencrypt"},
        "database": {"host": "postgres.platform.example", "adminSecretRef": {"name": "pg-admin"}},
    })  # fmt: skip
    path = tmp_path / "stack.yaml"
    path.write_text(yaml.safe_dump(manifest))
    result = CliRunner().invoke(cli, ["render", "--target", "k8s", "-f", str(path), "--seed", "1"])
    assert result.exit_code == 0, result.output
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    kinds = {d["kind"] for d in docs}
    # Behind a known host nothing is stripped, so no Middleware (test_traefik_middleware_... renders one).
    assert {"Deployment", "StatefulSet", "Service", "Secret", "Ingress", "NetworkPolicy", "Job"} <= kinds
    res = subprocess.run(
        [str(KUBECTL), "--kubeconfig", str(kubeconfig), "apply", "--server-side", "--dry-run=server",
         "--validate=strict", "--field-manager=addonstack-tests", "-f", "-"],
        input=result.stdout, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    accepted = [line for line in res.stdout.splitlines() if "(server dry run)" in line]
    assert len(accepted) == len(docs), res.stdout[-2000:]
    record(f"server-side dry run accepted {len(docs)} objects of {len(ids)} services")


def test_traefik_middleware_and_name_conflicts(client: Client, kubeconfig: Path, namespace: str) -> None:
    ingress = {"className": "traefik", "pathPrefix": "/t"}  # no host: the prefix is stripped
    with running_operator(kubeconfig):
        client.create(codecs.from_dict(stack("first", namespace, {"services": ["qdrant"], "ingress": ingress})))
        wait_ready(client, "first", namespace)
        mw = client.get(TraefikMiddleware, "qdrant-strip", namespace=namespace).to_dict()
        assert mw["spec"]["stripPrefix"]["prefixes"] and mw["spec"]["stripPrefix"]["prefixes"][0].startswith("/t/")
        assert mw["metadata"]["labels"]["addonstack.dev/stack"] == "first"

        client.create(codecs.from_dict(stack("second", namespace, {"services": ["qdrant", "gotify"]})))

        def stalled() -> dict[str, Any] | str:
            obj = get_stack(client, "second", namespace)
            st = condition(obj, "Stalled")
            return obj if st.get("reason") == "NameConflict" else f"Stalled={st}"

        obj = wait_for("the second stack to report the name conflict", stalled, timeout=60)
        message = condition(obj, "Stalled")["message"]
        assert "Service/qdrant" in message and "'first'" in message and "own namespace" in message
        # The first owner keeps its objects; the newcomer's other services still deploy.
        svc = client.get(Service, "qdrant", namespace=namespace)
        assert svc.metadata.labels["addonstack.dev/stack"] == "first"
        wait_for("gotify of the second stack", lambda: client.get(Service, "gotify", namespace=namespace), 60)
        assert condition(get_stack(client, "first", namespace), "Ready")["status"] == "True"


def test_operator_dry_run_writes_no_children_and_no_status(
    client: Client, kubeconfig: Path, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    from lightkube.resources.apps_v1 import StatefulSet
    from lightkube.resources.core_v1 import Secret

    caplog.set_level(logging.INFO, logger="addonstack.handlers")
    with running_operator(kubeconfig, dry_run=True):
        client.create(codecs.from_dict(stack("trial", namespace, {"services": ["qdrant", "gotify"]})))

        def planned() -> bool:
            return any(f"dry-run: {namespace}/trial planned" in r.getMessage() for r in caplog.records)

        wait_for("the dry run to plan the stack", planned, timeout=60)
        obj = get_stack(client, "trial", namespace)
    assert not obj.get("status"), obj.get("status")
    # kopf's record of the handled spec is not written either (controller/kopfstate.py reads it from status).
    assert not [k for k in obj["metadata"].get("annotations") or {} if "last-handled" in k]
    labels = {"addonstack.dev/stack": "trial"}
    for res in (Secret, Service, StatefulSet):
        assert not list(client.list(res, namespace=namespace, labels=labels)), f"dry run created a {res.__name__}"


@pytest.mark.parametrize(
    ("name", "spec", "expect"),
    [
        ("x" * 41, {"services": ["qdrant"]}, "metadata.name: at most 40 characters"),
        ("labels", {"services": ["qdrant"], "networkPolicy": {"gateway": {"podLabels": {"bad key!": "x"}}}},
         "keys must match"),
        ("values", {"services": ["qdrant"], "networkPolicy": {"gateway": {"podLabels": {"app": "no spaces"}}}},
         "podLabels.app"),
    ],
)  # fmt: skip
def test_names_and_labels_the_api_server_refuses(
    client: Client, namespace: str, name: str, spec: dict[str, Any], expect: str
) -> None:
    from lightkube.core.exceptions import ApiError

    with pytest.raises(ApiError) as err:
        client.create(codecs.from_dict(stack(name, namespace, spec)))
    assert expect in str(err.value.status.message), err.value.status.message


def test_traefik_ingress_without_traefik_says_what_to_install(client: Client, kubeconfig: Path, namespace: str) -> None:
    # Last in this module: it removes the Middleware CRD that the module's fixture installed.
    from lightkube.core.exceptions import ApiError
    from lightkube.resources.apiextensions_v1 import CustomResourceDefinition

    client.delete(CustomResourceDefinition, "middlewares.traefik.io")

    def crd_gone() -> bool:
        try:
            client.get(CustomResourceDefinition, "middlewares.traefik.io")
        except ApiError as exc:
            return exc.status.code == 404
        return False

    wait_for("the Middleware CRD to go", crd_gone, timeout=60)
    ingress = {"className": "traefik"}  # no host: the prefix is stripped by a Middleware
    with running_operator(kubeconfig):
        client.create(codecs.from_dict(stack("plain", namespace, {"services": ["qdrant"], "ingress": ingress})))

        def stalled() -> dict[str, Any] | str:
            st = condition(get_stack(client, "plain", namespace), "Stalled")
            return st if st.get("reason") == "ApplyFailed" else f"Stalled={st}"

        st = wait_for("the stack to say Traefik is missing", stalled, timeout=60)
    assert "Middleware/qdrant-strip: Traefik's CRDs (traefik.io/v1alpha1) are not installed" in st["message"]
    assert client.get(Service, "qdrant", namespace=namespace) is not None  # the rest of the stack still deploys
