"""The local control plane behaves like a real cluster where the operator depends on it, and stays local.

Checks what kwok, the controller-manager and the scheduler add over a bare apiserver (Deployments become
Available, Jobs complete, namespaces finish deleting, fake nodes with arm64 and a GPU), the pinned server
version, loopback-only sockets, and that ``down()`` and a failed ``up()`` leave no process behind.
"""

from __future__ import annotations

import ipaddress
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Namespace, Pod

from addonstack.devcluster import K8S_VERSION, DevCluster, DevClusterError, find_binaries, pid_alive

pytestmark = pytest.mark.cluster
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60, interval: float = 0.3) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = probe()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last!r}")


def deployment(name: str, namespace: str, replicas: int = 2, **pod_spec: Any) -> dict[str, Any]:
    labels = {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {"containers": [{"name": "app", "image": "registry.invalid/app:1"}], **pod_spec},
            },
        },
    }


def test_deployment_becomes_available(admin_client: Client, namespace: str) -> None:
    admin_client.create(codecs.from_dict(deployment("web", namespace)))

    def available() -> bool:
        st = admin_client.get(Deployment, "web", namespace=namespace).status
        if st is None:
            return False
        conds = {c.type: c.status for c in st.conditions or []}
        return conds.get("Available") == "True" and st.availableReplicas == 2

    wait_for("Deployment web to become Available", available)
    pods = list(admin_client.list(Pod, namespace=namespace, labels={"app": "web"}))
    assert len(pods) == 2
    for pod in pods:
        assert pod.spec is not None and pod.status is not None
        assert pod.status.phase == "Running"
        assert pod.spec.nodeName in {"kwok-node-0", "kwok-node-1"}
        assert pod.status.podIP


def test_nodes_offer_arm64_and_a_gpu(admin_client: Client, namespace: str) -> None:
    arm = deployment("arm", namespace, replicas=1, nodeSelector={"kubernetes.io/arch": "arm64"})
    gpu = deployment("gpu", namespace, replicas=1)
    gpu["spec"]["template"]["spec"]["containers"][0]["resources"] = {"limits": {"nvidia.com/gpu": "1"}}
    for obj in (arm, gpu):
        admin_client.create(codecs.from_dict(obj))

    def node_of(app: str) -> str | None:
        for pod in admin_client.list(Pod, namespace=namespace, labels={"app": app}):
            if pod.spec and pod.status and pod.status.phase == "Running":
                return pod.spec.nodeName
        return None

    assert wait_for("the arm64 pod to run", lambda: node_of("arm")) == "kwok-node-1"
    assert wait_for("the GPU pod to run", lambda: node_of("gpu")) == "kwok-node-0"


def test_job_pod_completes(admin_client: Client, namespace: str) -> None:
    job = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "once", "namespace": namespace},
        "spec": {
            "backoffLimit": 0,
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "once", "image": "registry.invalid/once:1"}],
                }
            },
        },
    }
    admin_client.create(codecs.from_dict(job))

    def complete() -> bool:
        st = admin_client.get(Job, "once", namespace=namespace).status
        if st is None:
            return False
        conds = {c.type: c.status for c in st.conditions or []}
        return conds.get("Complete") == "True" and st.succeeded == 1

    wait_for("Job once to complete", complete)
    (pod,) = admin_client.list(Pod, namespace=namespace, labels={"job-name": "once"})
    assert pod.status is not None and pod.status.phase == "Succeeded"


def test_namespace_deletion_finishes(admin_client: Client) -> None:
    name = f"t-delete-{uuid.uuid4().hex[:6]}"
    admin_client.create(codecs.from_dict({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}))
    admin_client.create(codecs.from_dict(deployment("doomed", name, replicas=1)))
    wait_for(
        "a pod of the doomed Deployment",
        lambda: list(admin_client.list(Pod, namespace=name, labels={"app": "doomed"})),
    )
    admin_client.delete(Namespace, name)

    def gone() -> bool:
        try:
            admin_client.get(Namespace, name)
        except ApiError as exc:
            return exc.status.code == 404
        return False

    wait_for(f"namespace {name} to be deleted", gone, timeout=90)  # KCM's namespace controller


def _kubectl() -> str:
    found = sorted((Path.home() / ".cache" / "addonstack" / "tools").glob("*/kubectl"))
    path = str(found[-1]) if found else shutil.which("kubectl")
    assert path, "no kubectl: run `make tools` (tools/k8s/tools.sh)"
    return path


def test_server_reports_the_pinned_version(kubeconfig: Path) -> None:
    out = subprocess.run(
        [_kubectl(), "--kubeconfig", str(kubeconfig), "version", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert K8S_VERSION == "v1.35.4"
    assert json.loads(out)["serverVersion"]["gitVersion"] == K8S_VERSION


def _decode(hex_addr: str) -> tuple[str, int]:
    """``0100007F:1F90`` from /proc/net/{tcp,udp}{,6}: 32-bit words in host byte order, then the port."""
    host, port = hex_addr.split(":")
    raw = bytes.fromhex(host)
    if sys.byteorder == "little":
        raw = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    ip = ipaddress.ip_address(raw)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return str(ip), int(port, 16)


def listening_sockets(pid: int) -> set[tuple[str, str, int]]:
    """(table, ip, port) of every listening TCP and bound, unconnected UDP socket that ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    found = set()
    for table in ("tcp", "tcp6", "udp", "udp6"):
        listen_state = "0A" if table.startswith("tcp") else "07"  # TCP_LISTEN; TCP_CLOSE for UDP
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes and fields[3] == listen_state:
                found.add((table, *_decode(fields[1])))
    return found


def test_components_listen_on_loopback_only(kubeconfig: Path) -> None:
    state_file = kubeconfig.parent / "state.json"
    if not state_file.is_file():
        pytest.skip("ADDONSTACK_TEST_KUBECONFIG names a cluster this harness did not start")
    components = json.loads(state_file.read_text())["components"]
    assert set(components) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}
    for name, comp in components.items():
        sockets = listening_sockets(int(comp["pid"]))
        assert sockets, f"{name} listens nowhere? (parsing /proc failed)"
        assert {ip for _, ip, _ in sockets} == {"127.0.0.1"}, f"{name} listens beyond loopback: {sockets}"
        assert comp["port"] in {port for _, _, port in sockets}, f"{name}: {sockets}"


def _pids_running(binary: Path) -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                argv0 = (proc / "cmdline").read_bytes().split(b"\0", 1)[0]
            except OSError:
                continue
            if argv0 == str(binary).encode() and pid_alive(int(proc.name)):
                pids.append(int(proc.name))
    return pids


def test_down_stops_every_process(tmp_path: Path) -> None:
    cluster = DevCluster(tmp_path / "dc", find_binaries())
    cluster.up()
    try:
        assert cluster.status()["running"] is True
        state = json.loads(cluster.state_file.read_text())
    finally:
        cluster.down()
    alive = {name: c["pid"] for name, c in state["components"].items() if pid_alive(int(c["pid"]))}
    assert not alive, f"still running after down(): {alive}"
    assert not Path(state["data_dir"]).exists()
    assert cluster.status()["running"] is False


def test_failed_start_shows_the_log_and_stops_what_started(tmp_path: Path) -> None:
    real = find_binaries()
    bins = tmp_path / "bin"
    bins.mkdir()
    for entry in real.iterdir():
        (bins / entry.name).symlink_to(entry)
    (bins / "kube-apiserver").unlink()
    (bins / "kube-apiserver").write_text("#!/bin/sh\necho 'boom: this apiserver is a fake' >&2\nexit 3\n")
    (bins / "kube-apiserver").chmod(0o755)
    cluster = DevCluster(tmp_path / "dc", bins)
    with pytest.raises(DevClusterError) as err:
        cluster.up(timeout=60)
    assert "kube-apiserver exited with code 3" in str(err.value)
    assert "boom: this apiserver is a fake" in str(err.value)
    assert not _pids_running(bins / "etcd"), "etcd was left running"
    assert not cluster.state_file.exists()
