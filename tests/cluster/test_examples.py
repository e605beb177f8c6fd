"""examples/ and docs/quickstart.md on the real control plane, with the operator running.

Each example stack reaches the state its header comment documents (``Expected: Ready N/M``), with exactly the
services `addonstack validate` says it deploys and the objects that make the use case work. The quickstart's
shell blocks run as written (after the `make` lines: the test session provides the cluster and the operator),
against this cluster, in order.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Node, Pod, Secret
from lightkube.resources.networking_v1 import Ingress

from addonstack.cli.main import cli
from addonstack.controller.cluster import AddonStackResource
from tests.cluster.operator_harness import condition, get_stack, running_operator, wait_for, wait_ready
from tests.docsutil import DOCS, ROOT, SHELL_LANGS, command_lines, fenced_blocks

pytestmark = pytest.mark.cluster
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
LABEL = "addonstack.dev/stack"
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def operator_running(kubeconfig: Path, client: Client) -> Iterator[None]:
    with running_operator(kubeconfig):
        yield


def _apply(client: Client, doc: dict[str, Any], namespace: str) -> None:
    client.apply(codecs.from_dict(doc), namespace=namespace, force=True)


def _pg_admin(client: Client, namespace: str) -> None:
    _apply(
        client,
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "pg-admin", "namespace": namespace},
            "stringData": {"username": "postgres", "password": "admin-pw-for-tests"},
        },
        namespace,
    )


def _documented(example: Path) -> tuple[int, int]:
    """``Expected: Ready N/M`` from the example's header comment."""
    header = "".join(line for line in example.read_text().splitlines(keepends=True) if line.startswith("#"))
    m = re.search(r"Expected: Ready (\d+)/(\d+)", header)
    assert m, f"{example.name}: the header comment documents no expected state (Expected: Ready N/M)"
    return int(m.group(1)), int(m.group(2))


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
def test_example_reaches_its_documented_state(
    example: Path, client: Client, operator_running: None, namespace: str
) -> None:
    doc = yaml.safe_load(example.read_text())
    name = doc["metadata"]["name"]
    planned = CliRunner().invoke(cli, ["validate", "-f", str(example), "--json"])
    assert planned.exit_code == 0, planned.output
    services = json.loads(planned.stdout)["services"]
    ready, total = _documented(example)
    assert len(services) == total, f"{example.name} documents {total} services, validate plans {services}"

    _pg_admin(client, namespace)
    _apply(client, {**doc, "metadata": {**doc["metadata"], "namespace": namespace}}, namespace)
    obj = wait_ready(client, name, namespace, timeout=240)

    st = obj["status"]
    assert st["summary"] == f"{ready}/{total}"
    assert [s["id"] for s in st["services"]] == services
    assert all(s["phase"] == "Ready" and s["readyReplicas"] == s["replicas"] == 1 for s in st["services"])
    assert st.get("skipped", []) == [] and st.get("skippedCount", 0) == 0
    assert condition(obj, "Stalled")["status"] == "False"
    workloads = {
        o.metadata.name: o
        for res in (Deployment, StatefulSet)
        for o in client.list(res, namespace=namespace, labels={LABEL: name})
    }
    assert set(workloads) == set(services)

    if example.stem == "automation":
        jobs = list(client.list(Job, namespace=namespace, labels={LABEL: name}))
        assert jobs and all((j.status.succeeded or 0) >= 1 for j in jobs), "the database setup Job completed"
    if example.stem == "gpu":
        ollama = workloads["ollama"]
        limits = ollama.spec.template.spec.containers[0].resources.limits
        assert limits["nvidia.com/gpu"] in ("1", 1)
        pods = list(client.list(Pod, namespace=namespace, labels={"addonstack.dev/service": "ollama"}))
        assert pods and pods[0].spec.nodeName
        node = client.get(Node, pods[0].spec.nodeName)
        assert "nvidia.com/gpu" in (node.status.allocatable or {}), "scheduled on the node that has a GPU"
    if example.stem == "rag":
        ingresses = {i.metadata.name: i for i in client.list(Ingress, namespace=namespace, labels={LABEL: name})}
        assert set(ingresses) == {"qdrant", "searxng"}
        for sid, ing in ingresses.items():  # neither can live under a path: each on its own host
            assert "nginx.ingress.kubernetes.io/rewrite-target" not in (ing.metadata.annotations or {})
            assert ing.spec.rules[0].host == f"{sid}.rag.tenant.example"
            assert ing.spec.rules[0].http.paths[0].path == "/"
        urls = {r["serviceId"]: r.get("url") for r in st["routes"]}
        assert urls["qdrant"] == "http://qdrant.rag.tenant.example/"


# ---- the quickstart, word for word ------------------------------------------------------------------


def _secret_data(client: Client, namespace: str, name: str) -> dict[str, str]:
    s = client.get(Secret, name, namespace=namespace)
    return {k: base64.b64decode(v).decode() for k, v in (s.data or {}).items()}


def test_quickstart_ends_with_a_ready_stack(
    client: Client, operator_running: None, namespace: str, kubeconfig: Path, tmp_path: Path
) -> None:
    """The quickstart's blocks after `make demo`, in its directory layout: `.dev-cluster/admin.kubeconfig` is this
    cluster's kubeconfig and `.venv/bin` this interpreter's. Only the namespace differs (`-n demo` becomes the
    test's own namespace); `make` lines are left out (the session started the cluster and the operator)."""
    (tmp_path / ".dev-cluster").mkdir()
    (tmp_path / ".dev-cluster" / "admin.kubeconfig").symlink_to(kubeconfig)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(BIN)
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env["COLUMNS"] = "160"

    blocks = [b for b in fenced_blocks(DOCS / "quickstart.md", SHELL_LANGS)]
    runnable = [b for b in blocks if not all(line.startswith("make ") for line in command_lines(b.text))]
    exports = [b for b in runnable if all(line.startswith("export ") for line in command_lines(b.text))]
    assert len(exports) == 1, "one block sets up the shell; the others run with it"
    steps = [b for b in runnable if b not in exports]
    assert any("kubectl apply" in b.text for b in steps) and any("status" in b.text for b in steps)

    seen: dict[str, str] = {}
    for block in steps:
        script = exports[0].text + block.text.replace(" -n demo", f" -n {namespace}")
        res = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=400,
        )
        assert res.returncode == 0, f"quickstart.md line {block.line}:\n{block.text}\n{res.stdout}\n{res.stderr}"
        if "kubectl apply" in block.text and "kubectl delete" not in block.text:
            # Section 5: the stack is Ready for its current generation, and the master key is in its Secret.
            obj = get_stack(client, "my-stack", namespace)
            assert condition(obj, "Ready")["status"] == "True"
            assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"]
            assert {s["id"] for s in obj["status"]["services"]} == {"meilisearch", "uptime-kuma"}
            assert "my-stack" in res.stdout and "True" in res.stdout
            seen = _secret_data(client, namespace, "meilisearch-env")
            assert seen.get("MEILI_MASTER_KEY")
        if "kubectl delete" in block.text:
            # `status --watch` waited for the changed spec, not the Ready=True left from the one before.
            assert re.search(r"excalidraw\s*│\s*Ready", res.stdout), res.stdout
    assert seen, "the deploy step ran"

    # Section 6 added excalidraw, waited for Ready, then deleted the stack: Retain keeps the Secrets unchanged.
    def gone() -> bool:
        try:
            client.get(AddonStackResource, "my-stack", namespace=namespace)
        except ApiError as exc:
            return exc.status.code == 404
        return False

    wait_for("my-stack to be deleted", gone, timeout=60)
    assert _secret_data(client, namespace, "meilisearch-env") == seen, "the generated key never changed"
    client.get(Secret, "excalidraw-env", namespace=namespace)  # the added service's Secret is kept too


# ---- make demo ----------------------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] not in "ZX"
    except (FileNotFoundError, IndexError):
        return False


def test_demo_script_brings_everything_up_and_down(tmp_path: Path) -> None:
    """tools/demo.sh (what `make demo` runs after set-up) on a control plane of its own: the CRD, the operator
    in the background with pid and log files, the examples Ready; `down` (`make demo-down`) leaves no process."""
    dev_dir = tmp_path / "dev"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    env.update(ADDONSTACK_DEV_DIR=str(dev_dir), ADDONSTACK_BIN=str(BIN), ADDONSTACK_HEALTH_PORT="0",
               ADDONSTACK_METRICS_BIND_ADDRESS="0", COLUMNS="160")
    script = str(ROOT / "tools" / "demo.sh")
    try:
        up = subprocess.run(["bash", script], env=env, capture_output=True, text=True, timeout=420)
        assert up.returncode == 0, f"{up.stdout}\n{up.stderr}\n{(dev_dir / 'operator.log').read_text()[-3000:]}"
        assert "demo Ready in" in up.stdout
        for example in EXAMPLES:
            name = yaml.safe_load(example.read_text())["metadata"]["name"]
            assert re.search(rf"^{name}\s+True\s", up.stdout, re.M), f"{name} Ready in the final listing"
        operator_pid = int((dev_dir / "operator.pid").read_text())
        assert _alive(operator_pid) and (dev_dir / "operator.log").stat().st_size > 0
        state = json.loads((dev_dir / "state.json").read_text())
        pids = [operator_pid, *(int(c["pid"]) for c in state["components"].values())]
        assert len(pids) == 6, state["components"].keys()
    finally:
        down = subprocess.run(["bash", script, "down"], env=env, capture_output=True, text=True, timeout=120)
    assert down.returncode == 0, down.stdout + down.stderr
    assert "operator stopped" in down.stdout and "dev cluster stopped" in down.stdout
    wait_for("every demo process to exit", lambda: not any(_alive(p) for p in pids) or None, timeout=30)
    assert not (dev_dir / "operator.pid").exists()
