"""The install paths on the real control plane: `helm install` of the CRD and operator charts, then the
operator run exactly as the chart's Deployment runs it (its args and env) with the chart ServiceAccount's
own token (TokenRequest API). A stack converges with only what the chart grants, the identity has no
Secret access outside the watched namespace, and two peered replicas never reconcile the same stack.

kwok fakes pods, so the chart's operator pods never execute code: the operator runs as subprocesses of
the test with the ServiceAccount's credentials instead, which is what the pod would do.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import Client, codecs
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.authentication_v1 import TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Event, Namespace, ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRoleBinding, RoleBinding

from addonstack.controller.cluster import AddonStackResource
from addonstack.devcluster import free_ports
from tests.cluster.operator_harness import ROOT, TEST_DEFAULTS, stack, wait_for, wait_ready

pytestmark = pytest.mark.cluster

CHARTS = ROOT / "deploy" / "chart"
TOOLS = Path.home() / ".cache" / "addonstack" / "tools"
SA = "addonstack-operator"  # the chart's ServiceAccount (and Role) name
KopfPeering = create_namespaced_resource("kopf.dev", "v1", "KopfPeering", "kopfpeerings")
# An HTTP 403 in the client's request log, an API error message, or kopf's warning about missing rights.
FORBIDDEN = re.compile(r"HTTP/\S+ 403\b|\bforbidden\b|Not enough permissions", re.IGNORECASE)


def _tool(name: str) -> str:
    found = sorted(p for p in TOOLS.glob(f"*/{name}") if p.is_file())
    if not found:
        pytest.fail(f"{name} not found under {TOOLS}: run `make tools` (tools/k8s/tools.sh)", pytrace=False)
    return str(found[-1])


def _run(cmd: list[str], kubeconfig: Path, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "HELM_CACHE_HOME": str(kubeconfig.parent / "helm-cache"),
           "HELM_CONFIG_HOME": str(kubeconfig.parent / "helm-config"),
           "HELM_DATA_HOME": str(kubeconfig.parent / "helm-data")}  # fmt: skip
    res = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if check:
        assert res.returncode == 0, f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}"
    return res


def _helm_install(helm: str, kubeconfig: Path, release_ns: str, watch: str, *values: str) -> None:
    """The documented install: the CRD chart first, then the operator chart watching ``watch``."""
    # --take-ownership: the session's other tests may have applied the CRDs already (as a user might have).
    _run([helm, "install", f"crds-{release_ns}"[:53], str(CHARTS / "addonstack-crds"), "-n", release_ns,
          "--take-ownership", "--wait", "--timeout", "60s"], kubeconfig)  # fmt: skip
    _run([helm, "install", "addonstack", str(CHARTS / "addonstack"), "-n", release_ns,
          "--set", f"watchNamespaces={{{watch}}}",
          "--set", f"defaults.databaseHost={TEST_DEFAULTS.database_host}",
          "--set", f"defaults.databaseAdminSecret={TEST_DEFAULTS.database_admin_secret}",
          "--set", "defaults.driftIntervalSeconds=5", "--wait", "--timeout", "60s", *values], kubeconfig)  # fmt: skip


def _token_kubeconfig(client: Client, admin_kubeconfig: Path, namespace: str, out: Path) -> Path:
    """A kubeconfig holding a real, apiserver-signed token of the chart's ServiceAccount."""
    tr = client.create(
        ServiceAccount.Token(metadata=ObjectMeta(), spec=TokenRequestSpec(audiences=[], expirationSeconds=3600)),
        SA,
        namespace=namespace,
    )
    cfg = yaml.safe_load(admin_kubeconfig.read_text())
    cfg["users"] = [{"name": SA, "user": {"token": tr.status.token}}]
    for ctx in cfg["contexts"]:
        ctx["context"]["user"] = SA
    out.write_text(yaml.safe_dump(cfg))
    out.chmod(0o600)
    return out


@dataclass
class OperatorProcess:
    """`addonstack operator run` with the chart Deployment's args and env, its log in a file."""

    proc: subprocess.Popen[bytes]
    log: Path
    health: str

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # what the kubelet sends
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def _chart_command(client: Client, namespace: str) -> tuple[list[str], dict[str, str]]:
    """The operator container's args and literal env, as installed by Helm."""
    dep = client.get(Deployment, SA, namespace=namespace)
    container = dep.spec.template.spec.containers[0]
    env = {e.name: e.value for e in container.env or [] if e.value is not None}
    return list(container.args or []), env


@contextlib.contextmanager
def _operators(
    client: Client, namespace: str, kubeconfig: Path, logs: Path, pod_ids: list[str]
) -> Iterator[list[OperatorProcess]]:
    args, env = _chart_command(client, namespace)
    ports = free_ports(len(pod_ids))
    procs: list[OperatorProcess] = []
    try:
        for pod, port in zip(pod_ids, ports, strict=True):
            log = logs / f"{pod}.log"
            penv = {**os.environ, **env, "KUBECONFIG": str(kubeconfig), "POD_ID": pod,
                    "ADDONSTACK_HEALTH_HOST": "127.0.0.1", "ADDONSTACK_HEALTH_PORT": str(port),
                    "ADDONSTACK_METRICS_BIND_ADDRESS": "0"}  # fmt: skip
            with log.open("wb") as fh:
                proc = subprocess.Popen(
                    [sys.executable, "-c", "from addonstack.cli.main import main; main()", *args],
                    stdout=fh,
                    stderr=subprocess.STDOUT,
                    env=penv,
                )
            procs.append(OperatorProcess(proc, log, f"http://127.0.0.1:{port}/healthz"))
        yield procs
    finally:
        for p in procs:
            p.stop()


def _healthy(url: str) -> bool:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except OSError:  # not listening yet
        return False


def _handled(log: str, namespace: str) -> dict[str, int]:
    """Per stack: how many of kopf's handler outcomes this process logged for it (the child-watch handler
    logs under the child's name, so it is left out)."""
    counts: dict[str, int] = {}
    pattern = re.compile(
        rf"\[{re.escape(namespace)}/([a-z0-9-]+)\] (?:Handler|Timer) '(?![^']*on_child')[^']+' (?:succeeded|failed)"
    )
    for m in pattern.finditer(log):
        counts[m.group(1)] = counts.get(m.group(1), 0) + 1
    return counts


def _no_permission_errors(procs: list[OperatorProcess], only: str | None = None) -> None:
    """No request was refused. ``only``: ignore lines about namespaces other than this one."""
    for p in procs:
        bad = [line for line in p.text().splitlines() if FORBIDDEN.search(line) and _about(line, only)]
        assert not bad, f"{p.log.name}: the chart's RBAC is missing something:\n" + "\n".join(bad[:10])


def _about(line: str, namespace: str | None) -> bool:
    if namespace is None:
        return True
    mentioned = set(
        re.findall(r"namespaces/([a-z0-9-]+)|\[([a-z0-9-]+)/[a-z0-9-]+\]|in namespace ([a-z0-9-]+)", line)
    )
    names = {a or b or c for a, b, c in mentioned}
    return not names or namespace in names


def _can_i(kubectl: str, kubeconfig: Path, *args: str) -> bool:
    res = _run([kubectl, "auth", "can-i", *args], kubeconfig, check=False)
    assert res.stdout.strip() in ("yes", "no"), res.stdout + res.stderr
    return res.stdout.strip() == "yes"


@pytest.fixture
def apps_namespace(admin_client: Client, namespace: str) -> Iterator[str]:
    """A second namespace: the one the operator watches (the release lives in ``namespace``)."""
    name = f"{namespace[:50]}-apps"
    admin_client.create(Namespace(metadata=ObjectMeta(name=name, labels={"addonstack.dev/test": "true"})))
    admin_client.apply(
        codecs.from_dict({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "pg-admin", "namespace": name},
                          "stringData": {"username": "postgres", "password": "admin-pw"}}),
        force=True,
    )  # fmt: skip
    yield name
    with contextlib.suppress(ApiError):
        admin_client.delete(Namespace, name)


def test_helm_install_runs_with_least_privilege(
    admin_client: Client, kubeconfig: Path, namespace: str, apps_namespace: str, tmp_path: Path
) -> None:
    ops, apps = namespace, apps_namespace
    kubectl = _tool("kubectl")
    _helm_install(_tool("helm"), kubeconfig, ops, apps)

    # Namespaced mode: a Role and RoleBinding in the watched namespace, nothing cluster-wide.
    subject = f"system:serviceaccount:{ops}:{SA}"
    bindings = [
        b.metadata.name
        for b in admin_client.list(ClusterRoleBinding)
        if any(s.kind == "ServiceAccount" and s.namespace == ops and s.name == SA for s in b.subjects or [])
    ]
    assert bindings == [], f"{subject} must have no ClusterRoleBinding in namespaced mode: {bindings}"
    assert [b.metadata.name for b in admin_client.list(RoleBinding, namespace=apps)] == [SA]

    sa_config = _token_kubeconfig(admin_client, kubeconfig, ops, tmp_path / "sa.kubeconfig")
    whoami = json.loads(_run([kubectl, "auth", "whoami", "-o", "json"], sa_config).stdout)
    assert whoami["status"]["userInfo"]["username"] == subject
    # What the identity may do (SelfSubjectAccessReview with its own token).
    assert _can_i(kubectl, sa_config, "list", "secrets", "-n", apps)
    assert _can_i(kubectl, sa_config, "patch", "addonstacks.addonstack.dev/status", "-n", apps)
    assert not _can_i(kubectl, sa_config, "list", "secrets", "--all-namespaces")
    for other in (ops, "default", "kube-system"):
        assert not _can_i(kubectl, sa_config, "get", "secrets", "-n", other), f"can read Secrets in {other}"
    for verb, what in (("list", "namespaces"), ("list", "nodes"), ("create", "clusterroles"),
                       ("list", "customresourcedefinitions"), ("list", "addonstacks.addonstack.dev")):  # fmt: skip
        assert not _can_i(kubectl, sa_config, verb, what, "--all-namespaces"), f"can {verb} {what} cluster-wide"

    with _operators(admin_client, ops, sa_config, tmp_path, ["operator-0"]) as procs:
        (op,) = procs
        wait_for("the operator's /healthz (the chart's probes)", lambda: _healthy(op.health), timeout=30)
        _run([kubectl, "apply", "-n", apps, "-f", str(ROOT / "examples" / "automation.yaml"),
              "-f", str(ROOT / "examples" / "rag.yaml")], kubeconfig)  # fmt: skip
        for name in ("automation", "rag"):
            obj = wait_ready(admin_client, name, apps, timeout=60)
            assert obj["status"]["summary"] in ("1/1", "2/2"), obj["status"]
        # The drift timer (every 5 s) has run through a converged stack too: its calls are covered.
        wait_for(
            "a drift pass over both stacks",
            lambda: all(n in _timer_runs(op.text(), apps) for n in ("automation", "rag")),
            timeout=20,
        )
        # Deleting with deletionPolicy Delete runs the finalizer: a drop Job, Secret and claim deletes.
        admin_client.patch(AddonStackResource, "automation", {"spec": {"deletionPolicy": "Delete"}},
                           namespace=apps, patch_type=_merge())  # fmt: skip
        wait_for(
            "the finalizer on automation",
            lambda: "addonstack.dev/finalizer" in (_get(admin_client, "automation", apps) or {}).get(
                "metadata", {}).get("finalizers", []),
            timeout=30,
        )  # fmt: skip
        admin_client.delete(AddonStackResource, "automation", namespace=apps)
        wait_for("automation to be finalized and gone", lambda: _get(admin_client, "automation", apps) is None,
                 timeout=60)  # fmt: skip
        _no_permission_errors(procs)
        assert op.proc.poll() is None, op.text()[-3000:]

    # Events were recorded by the operator's identity (a missing `events` grant is silent otherwise).
    events = [e for e in admin_client.list(Event, namespace=apps) if e.involvedObject.name == "rag"]
    assert events and all(e.source.component == "addonstack-operator" for e in events), events


def test_cluster_wide_mode_runs_with_its_cluster_role(
    admin_client: Client, kubeconfig: Path, namespace: str, apps_namespace: str, tmp_path: Path
) -> None:
    ops, apps = namespace, apps_namespace
    kubectl, helm = _tool("kubectl"), _tool("helm")
    _helm_install(helm, kubeconfig, ops, apps, "--set", "clusterWide=true")
    try:
        args, _ = _chart_command(admin_client, ops)
        assert not [a for a in args if a.startswith("--namespace")], args
        sa_config = _token_kubeconfig(admin_client, kubeconfig, ops, tmp_path / "sa.kubeconfig")
        # The documented trade-off: every Secret of the cluster. Still nothing beyond the operator's needs.
        assert _can_i(kubectl, sa_config, "list", "secrets", "--all-namespaces")
        assert _can_i(kubectl, sa_config, "watch", "customresourcedefinitions")
        # Pods are only read (their container states carry the reasons a stack is not Ready).
        assert _can_i(kubectl, sa_config, "list", "pods", "--all-namespaces")
        for verb, what in (("list", "nodes"), ("create", "clusterroles"), ("create", "namespaces"),
                           ("update", "deployments"), ("create", "pods"), ("delete", "pods")):  # fmt: skip
            assert not _can_i(kubectl, sa_config, verb, what, "--all-namespaces"), f"can {verb} {what}"

        with _operators(admin_client, ops, sa_config, tmp_path, ["operator-0"]) as procs:
            admin_client.create(codecs.from_dict(stack("wide", apps, {"services": ["gotify"]})))
            wait_ready(admin_client, "wide", apps, timeout=60)
            wait_for("a drift pass", lambda: "wide" in _timer_runs(procs[0].text(), apps), timeout=20)
            # A cluster-wide operator also meets other tests' leftovers (in terminating namespaces, where
            # writes are refused with 403): only lines about this test's namespace, or about none, count.
            _no_permission_errors(procs, only=apps)
    finally:
        _run([helm, "uninstall", "addonstack", "-n", ops, "--wait"], kubeconfig)  # the ClusterRole is not namespaced


def _timer_runs(log: str, namespace: str) -> set[str]:
    return set(re.findall(rf"\[{re.escape(namespace)}/([a-z0-9-]+)\] Timer '[^']+' succeeded", log))


def _get(client: Client, name: str, namespace: str) -> dict[str, Any] | None:
    try:
        obj: dict[str, Any] = client.get(AddonStackResource, name, namespace=namespace).to_dict()
    except ApiError as exc:
        if exc.status.code == 404:
            return None
        raise
    return obj


def _merge() -> Any:
    from lightkube.types import PatchType

    return PatchType.MERGE


def _peers(client: Client, namespace: str) -> dict[str, Any]:
    """The status of the chart's KopfPeering: one entry per live replica (kopf's keep-alives)."""
    obj = client.get(KopfPeering, "addonstack", namespace=namespace).to_dict()
    status: dict[str, Any] = obj.get("status") or {}
    return status


def _all_peers(client: Client, namespace: str, pods: set[str]) -> dict[str, Any] | None:
    peers = _peers(client, namespace)
    return peers if set(peers) >= pods else None


def _peering_state(log: str) -> str:
    """kopf starts a peered operator paused and logs each change: the last one tells its state."""
    resumed, paused = log.rfind("Resuming operations"), log.rfind("Pausing operations")
    return "active" if resumed > paused else "paused"


def test_two_replicas_never_reconcile_the_same_stack(
    admin_client: Client, kubeconfig: Path, namespace: str, apps_namespace: str, tmp_path: Path
) -> None:
    ops, apps = namespace, apps_namespace
    # Helm 3 this time (the other test uses Helm 4): replicas=2 turns on kopf peering.
    _helm_install(_tool("helm3"), kubeconfig, ops, apps, "--set", "replicas=2")
    args, _ = _chart_command(admin_client, ops)
    assert "--peering=addonstack" in args
    assert _peers(admin_client, apps) == {}, "the chart creates the KopfPeering in the watched namespace"
    sa_config = _token_kubeconfig(admin_client, kubeconfig, ops, tmp_path / "sa.kubeconfig")

    with _operators(admin_client, ops, sa_config, tmp_path, ["replica-a", "replica-b"]) as procs:
        both = {"replica-a", "replica-b"}
        peers = wait_for("both replicas in the KopfPeering", lambda: _all_peers(admin_client, apps, both), timeout=30)
        # The replica with the higher priority works; the other stays paused (kopf starts every peer paused).
        leader_id = max(peers, key=lambda pod: int(peers[pod]["priority"]))
        settled = {p.log.stem: "active" if p.log.stem == leader_id else "paused" for p in procs}
        wait_for(f"{leader_id} active and the other replica paused",
                 lambda: {p.log.stem: _peering_state(p.text()) for p in procs} == settled, timeout=30)  # fmt: skip
        services = {"s-gotify": "gotify", "s-qdrant": "qdrant", "s-ntfy": "ntfy", "s-memos": "memos"}
        names = sorted(services)
        for name, service in services.items():
            admin_client.create(codecs.from_dict(stack(name, apps, {"services": [service]})))
        for name in names:
            wait_ready(admin_client, name, apps, timeout=60)
        wait_for("a drift pass over every stack",
                 lambda: any(_timer_runs(p.text(), apps) >= set(names) for p in procs), timeout=20)  # fmt: skip

        counts = {p.log.stem: _handled(p.text(), apps) for p in procs}
        active = [pod for pod, c in counts.items() if c]
        assert len(active) == 1, f"exactly one replica reconciles while both run; handler runs per replica: {counts}"
        standby = next(p for p in procs if p.log.stem != active[0])
        assert active == [leader_id] and _peering_state(standby.text()) == "paused"
        assert set(counts[active[0]]) == set(names)

        # Failover: the active replica leaves; the standby resumes and takes the next stack (and only it works).
        leader = next(p for p in procs if p.log.stem == active[0])
        leader.stop()
        wait_for("the standby to resume", lambda: _peering_state(standby.text()) == "active", timeout=30)
        admin_client.create(codecs.from_dict(stack("after", apps, {"services": ["meilisearch"]})))
        wait_ready(admin_client, "after", apps, timeout=60)
        assert "after" in _handled(standby.text(), apps)
        assert "after" not in _handled(leader.text(), apps)
        _no_permission_errors(procs)


def test_plain_manifests_are_accepted_by_the_api_server(admin_client: Client, kubeconfig: Path) -> None:
    """`kubectl apply -k deploy/manifests`, as a server-side dry run (the manifests equal the charts' render:
    tests/unit/test_deploy.py). Their namespace must exist for the dry run of what goes into it."""
    kubectl = _tool("kubectl")
    ns = "addonstack-system"
    created = False
    try:
        admin_client.get(Namespace, ns)
    except ApiError:
        admin_client.create(Namespace(metadata=ObjectMeta(name=ns, labels={"addonstack.dev/test": "true"})))
        created = True
    try:
        out = _run([kubectl, "apply", "-k", str(ROOT / "deploy" / "manifests"), "--dry-run=server"], kubeconfig).stdout
        for obj in ("customresourcedefinition.apiextensions.k8s.io/addonstacks.addonstack.dev",
                    "customresourcedefinition.apiextensions.k8s.io/kopfpeerings.kopf.dev",
                    "serviceaccount/addonstack-operator", "role.rbac.authorization.k8s.io/addonstack-operator",
                    "rolebinding.rbac.authorization.k8s.io/addonstack-operator",
                    "deployment.apps/addonstack-operator"):  # fmt: skip
            assert obj in out, out
    finally:
        if created:
            with contextlib.suppress(ApiError):
                admin_client.delete(Namespace, ns)
