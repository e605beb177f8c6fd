"""A real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) on loopback, no Docker.

Our machines can neither run kind/k3d nor download envtest binaries, so tools/k8s/build.sh builds the
binaries from Go modules and this module runs them as plain processes on free 127.0.0.1 ports. The pids
go to DIR/state.json, so another process (``addonstack dev-cluster down``) stops exactly those processes
and nothing else. kwok fake nodes make Deployments, Jobs and namespace deletion behave as in a real
cluster, at a fraction of the memory.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import yaml

from addonstack.devcluster.pki import CertPair, Pki, ensure_pki

log = logging.getLogger(__name__)

K8S_VERSION = "v1.35.4"  # keep in step with K8S_VERSION in tools/k8s/build.sh
RECIPE_REV = 1  # and with its RECIPE_REV
DEFAULT_BIN_DIR = Path.home() / ".cache" / "addonstack" / "k8s" / f"{K8S_VERSION}-r{RECIPE_REV}"
# Default StorageClass served by kube-controller-manager's hostpath provisioner (test clusters only).
STORAGE_CLASS: dict[str, Any] = {
    "apiVersion": "storage.k8s.io/v1",
    "kind": "StorageClass",
    "metadata": {"name": "standard", "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
    "provisioner": "kubernetes.io/host-path",
    "reclaimPolicy": "Delete",
    "volumeBindingMode": "Immediate",
}
DOWN_APISERVER_GRACE = 1.0
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
KWOK_STAGES = (
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
)
BUILD_SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "k8s" / "build.sh"
DATA_PREFIX = "addonstack-etcd-"
STOP_GRACE = 10.0
T = TypeVar("T")


class DevClusterError(RuntimeError):
    """The dev cluster could not be started; the message says which component and shows its log."""


# ---- binaries -------------------------------------------------------------------------------------


def find_binaries() -> Path:
    """Where the binaries are expected: $ADDONSTACK_K8S_BIN, else the build script's cache dir."""
    return Path(os.environ.get("ADDONSTACK_K8S_BIN") or DEFAULT_BIN_DIR)


def missing_binaries(bin_dir: Path) -> list[str]:
    missing = [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]
    return missing + [f"kwok-stages/{s}" for s in KWOK_STAGES if not (bin_dir / "kwok-stages" / s).is_file()]


def ensure_binaries(bin_dir: Path | None = None) -> Path:
    """Return the binaries dir, running tools/k8s/build.sh first when something is missing.

    The build needs the repository checkout (the script and its pinned go.mod/go.sum); an installed
    package without it gets an error that says what to do.
    """
    bin_dir = bin_dir or find_binaries()
    if not missing_binaries(bin_dir):
        return bin_dir
    if not BUILD_SCRIPT.is_file():
        raise DevClusterError(_missing_message(bin_dir))
    log.warning("building the Kubernetes binaries into %s (15-30 min cold)", bin_dir)
    env = {**os.environ, "K8S_BIN_DIR": str(bin_dir)}
    rc = subprocess.run(["bash", str(BUILD_SCRIPT)], env=env, stdout=sys.stderr, check=False).returncode
    if rc != 0 or missing_binaries(bin_dir):
        raise DevClusterError(f"{BUILD_SCRIPT} exited with {rc}; " + _missing_message(bin_dir))
    return bin_dir


def _missing_message(bin_dir: Path) -> str:
    return (
        f"Kubernetes binaries missing in {bin_dir}: {', '.join(missing_binaries(bin_dir))}. "
        "Build them with `make k8s` (tools/k8s/build.sh), or point ADDONSTACK_K8S_BIN at a directory "
        f"holding {', '.join(BINARIES)} and kwok-stages/."
    )


# ---- small helpers --------------------------------------------------------------------------------


def poll(
    what: str,
    probe: Callable[[], T | None],
    deadline: float,
    interval: float = 0.2,
    check: Callable[[], None] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; ``check`` may raise to give up early."""
    last: object = None
    while True:
        if check is not None:
            check()
        try:
            value = probe()
        except (OSError, ValueError) as exc:  # refused, TLS not up yet, HTTP errors, half-written JSON
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DevClusterError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, held open together so they cannot repeat."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _ssl_context(ca: Path, client: CertPair | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def _request(url: str, ctx: ssl.SSLContext | None = None, method: str = "GET", body: Any = None) -> str:
    # No proxies: everything here is on loopback, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=5) as resp:
        text: str = resp.read().decode()
        return text


def _proc_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` after reaping it if it is our exited child; None if gone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z", "X")


def _is_ours(pid: int, binary: str) -> bool:
    """True when ``pid`` is alive and still runs ``binary`` (guards against recycled pids)."""
    if not pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return argv0 == binary


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def _stop(pid: int, binary: str, proc: subprocess.Popen[bytes] | None, grace: float = STOP_GRACE) -> None:
    """SIGTERM ``pid`` (only if it still runs ``binary``), SIGKILL after ``grace`` seconds, and reap it."""

    def gone(timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            if proc is not None:
                proc.poll()
            if not pid_alive(pid):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)

    if not _is_ours(pid, binary):
        return
    with contextlib.suppress(ProcessLookupError):  # it may exit between the check and the signal
        os.kill(pid, signal.SIGTERM)
        if not gone(grace):
            log.log(
                logging.WARNING if grace >= STOP_GRACE else logging.DEBUG,
                "%s (pid %d) still running %ss after SIGTERM; killing it",
                binary,
                pid,
                grace,
            )
            os.kill(pid, signal.SIGKILL)
            gone(5)


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def kubeconfig_yaml(server: str, ca: Path, client: CertPair, user: str) -> str:
    """A self-contained kubeconfig (certificates embedded) for ``user``."""
    import base64

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "addonstack-dev",
                    "cluster": {"server": server, "certificate-authority-data": b64(ca)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": b64(client.cert), "client-key-data": b64(client.key)},
                }
            ],
            "contexts": [{"name": "addonstack-dev", "context": {"cluster": "addonstack-dev", "user": user}}],
            "current-context": "addonstack-dev",
        },
        sort_keys=False,
    )


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def fake_node(name: str, arch: str, labels: dict[str, str], resources: dict[str, str]) -> dict[str, Any]:
    """A kwok-managed Node. No kwok taint: operator-made workloads carry no toleration for it."""
    res = {"cpu": "32", "memory": "256Gi", "pods": "110", **resources}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "kwok.x-k8s.io/node": "fake"},
            "labels": {
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "kubernetes.io/arch": arch,
                "type": "kwok",
                **labels,
            },
        },
        "status": {
            "allocatable": res,
            "capacity": res,
            "nodeInfo": {"architecture": arch, "operatingSystem": "linux", "kubeletVersion": K8S_VERSION},
            "phase": "Running",
        },
    }


NODES = (
    fake_node("kwok-node-0", "amd64", {"nvidia.com/gpu.present": "true"}, {"nvidia.com/gpu": "1"}),
    fake_node("kwok-node-1", "arm64", {}, {}),
)


# ---- the cluster ----------------------------------------------------------------------------------


class DevCluster:
    """The control plane whose state lives in ``dir``; ``up``/``down``/``status`` work across processes."""

    def __init__(self, dir: Path, bin_dir: Path) -> None:
        self.dir = dir
        self.bin_dir = bin_dir
        self.kubeconfig = dir / "admin.kubeconfig"
        self.state_file = dir / "state.json"
        self.log_dir = dir / "logs"
        self._procs: dict[str, subprocess.Popen[bytes]] = {}

    # -- public -------------------------------------------------------------------------------------

    def up(self, timeout: float = 120) -> Path:
        """Start everything (or keep a healthy running instance); return the admin kubeconfig path."""
        if self._healthy():
            return self.kubeconfig
        self.down()  # leftovers of a crashed or half-stopped run
        if missing_binaries(self.bin_dir):
            raise DevClusterError(_missing_message(self.bin_dir))
        t0 = time.monotonic()
        deadline = t0 + timeout
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        pki = ensure_pki(self.dir / "pki")
        etcd_port, peer_port, api_port, kcm_port, sched_port, kwok_port = free_ports(6)
        shm = Path("/dev/shm")
        data_dir = Path(tempfile.mkdtemp(prefix=DATA_PREFIX, dir=shm if os.access(shm, os.W_OK) else self.dir))
        state: dict[str, Any] = {
            "k8s_version": K8S_VERSION,
            "bin_dir": str(self.bin_dir),
            "data_dir": str(data_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": f"https://127.0.0.1:{api_port}",
            "components": {},
        }
        try:
            self._up(state, pki, deadline, etcd_port, peer_port, api_port, kcm_port, sched_port, kwok_port)
        except BaseException:
            self.down()
            raise
        state["startup_seconds"] = round(time.monotonic() - t0, 2)
        self._save(state)
        log.info("dev cluster up in %.1fs: %s", state["startup_seconds"], self.kubeconfig)
        return self.kubeconfig

    def down(self) -> None:
        """Stop every recorded process by its own pid, last started first, and drop the etcd data."""
        state = self._load() or {}
        components: dict[str, dict[str, Any]] = state.get("components", {})
        for name, comp in reversed(list(components.items())):
            # The cluster's data is thrown away next, so kube-apiserver need not drain its watches
            # (its graceful shutdown outlasts any grace we give it: 10 s lost on every teardown).
            grace = DOWN_APISERVER_GRACE if name == "kube-apiserver" else STOP_GRACE
            _stop(int(comp["pid"]), str(comp["binary"]), self._procs.pop(name, None), grace)
        for name, proc in list(self._procs.items()):  # started, but state.json could not record it
            _stop(proc.pid, str(self.bin_dir / name), proc)
            del self._procs[name]
        data_dir = state.get("data_dir")
        if data_dir and Path(data_dir).name.startswith(DATA_PREFIX):
            shutil.rmtree(data_dir, ignore_errors=True)
        for stale in (self.state_file, self.kubeconfig):
            stale.unlink(missing_ok=True)
        shutil.rmtree(self.dir / "users", ignore_errors=True)

    def status(self) -> dict[str, Any]:
        """Which components run, with pid, port, liveness and RSS (MiB)."""
        state = self._load()
        if state is None:
            return {"dir": str(self.dir), "running": False, "components": {}}
        components = {}
        for name, comp in state["components"].items():
            alive = _is_ours(int(comp["pid"]), str(comp["binary"]))
            components[name] = {
                "pid": comp["pid"],
                "port": comp["port"],
                "alive": alive,
                "rss_mib": rss_mib(int(comp["pid"])) if alive else None,
            }
        return {
            "dir": str(self.dir),
            "running": bool(components) and all(c["alive"] for c in components.values()),
            "kubeconfig": state.get("kubeconfig"),
            "server": state.get("server"),
            "k8s_version": state.get("k8s_version"),
            "startup_seconds": state.get("startup_seconds"),
            "components": components,
        }

    def stop_component(self, name: str, hard: bool = False) -> None:
        """Stop one running component; the others keep running. ``hard``: SIGKILL at once, like a crash;
        otherwise SIGTERM, and SIGKILL after a grace period.

        etcd's data directory stays, so :meth:`start_component` brings back the same cluster state.
        Tests use this to take the API server or etcd away under load.
        """
        state = self._load()
        if state is None or name not in state.get("components", {}):
            raise DevClusterError(f"no component {name!r} recorded in {self.state_file}")
        comp = state["components"][name]
        pid, binary, proc = int(comp["pid"]), str(comp["binary"]), self._procs.pop(name, None)
        if hard and _is_ours(pid, binary):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            poll(f"{name} (pid {pid}) to exit", lambda: (proc is not None and proc.poll() is not None)
                 or not pid_alive(pid), time.monotonic() + 10, interval=0.05)  # fmt: skip
        _stop(pid, binary, proc)

    def start_component(self, name: str, timeout: float = 60) -> None:
        """Start a component stopped by :meth:`stop_component` again: same flags, port and data; wait until
        it answers its health check. Its log is appended to."""
        state = self._load()
        if state is None or name not in state.get("components", {}):
            raise DevClusterError(f"no component {name!r} recorded in {self.state_file}")
        comp = state["components"][name]
        if _is_ours(int(comp["pid"]), str(comp["binary"])):
            raise DevClusterError(f"{name} (pid {comp['pid']}) is still running; stop it first")
        if "args" not in comp:
            raise DevClusterError(f"{name} was started by an older version without recorded flags; run `down`/`up`")
        extra = {"peer_port": int(comp["peer_port"])} if "peer_port" in comp else {}
        self._start(
            name,
            list(comp["args"]),
            int(comp["port"]),
            self._ready_probe(name, state),
            time.monotonic() + timeout,
            state,
            log_mode="ab",
            **extra,
        )
        self._save(state)

    def _ready_probe(self, name: str, state: dict[str, Any]) -> Callable[[], bool]:
        """The health check ``_up`` uses for ``name``, rebuilt from the recorded state."""
        pki = ensure_pki(self.dir / "pki")
        port = int(state["components"][name]["port"])
        if name == "etcd":
            return lambda: json.loads(_request(f"http://127.0.0.1:{port}/health")).get("health") == "true"
        if name == "kube-apiserver":
            admin = _ssl_context(pki.ca.cert, pki.admin)
            return lambda: _request(f"{state['server']}/readyz", admin) == "ok"
        if name == "kwok":
            return lambda: _request(f"http://127.0.0.1:{port}/healthz") == "ok"
        components = _ssl_context(pki.ca.cert)
        return lambda: _request(f"https://127.0.0.1:{port}/healthz", components) == "ok"

    # -- internals ----------------------------------------------------------------------------------

    def _up(
        self,
        state: dict[str, Any],
        pki: Pki,
        deadline: float,
        etcd_port: int,
        peer_port: int,
        api_port: int,
        kcm_port: int,
        sched_port: int,
        kwok_port: int,
    ) -> None:
        p, kc = pki, str(self.kubeconfig)
        api = f"https://127.0.0.1:{api_port}"
        admin = _ssl_context(p.ca.cert, p.admin)
        components = _ssl_context(p.ca.cert)
        _write_private(self.kubeconfig, kubeconfig_yaml(api, p.ca.cert, p.admin, "admin"))

        peer = f"http://127.0.0.1:{peer_port}"
        self._start(
            "etcd",
            [
                "--name=dev", f"--data-dir={state['data_dir']}",
                f"--listen-client-urls=http://127.0.0.1:{etcd_port}",
                f"--advertise-client-urls=http://127.0.0.1:{etcd_port}",
                f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=dev={peer}", "--log-level=warn",
                "--quota-backend-bytes=2147483648", "--unsafe-no-fsync=true",
            ],
            etcd_port,
            lambda: json.loads(_request(f"http://127.0.0.1:{etcd_port}/health")).get("health") == "true",
            deadline,
            state,
            peer_port=peer_port,
        )  # fmt: skip
        self._start(
            "kube-apiserver",
            [
                f"--etcd-servers=http://127.0.0.1:{etcd_port}",
                "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", f"--secure-port={api_port}",
                f"--tls-cert-file={p.apiserver.cert}", f"--tls-private-key-file={p.apiserver.key}",
                f"--client-ca-file={p.ca.cert}",
                "--authorization-mode=RBAC",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={p.sa_pub}", f"--service-account-signing-key-file={p.sa_key}",
                "--service-cluster-ip-range=10.96.0.0/16",
                "--endpoint-reconciler-type=none",  # a loopback advertise address is invalid for Endpoints
                "--disable-admission-plugins=ServiceAccount",  # like envtest: no wait for `default` SA
                "--allow-privileged=true",
                "--enable-priority-and-fairness=false", "--profiling=false", "--v=1",
            ],
            api_port,
            lambda: _request(f"{api}/readyz", admin) == "ok",
            deadline,
            state,
        )  # fmt: skip
        # No --authentication/--authorization-kubeconfig: their health endpoints are always allowed, and
        # without a requestheader CA on the apiserver the delegated authn only fills the logs with errors.
        common = [
            f"--kubeconfig={kc}", "--bind-address=127.0.0.1", "--leader-elect=false",
            f"--tls-cert-file={p.components.cert}", f"--tls-private-key-file={p.components.key}",
            "--kube-api-qps=100", "--kube-api-burst=200", "--profiling=false", "--v=1",
        ]  # fmt: skip
        self._start(
            "kube-controller-manager",
            [
                *common, f"--secure-port={kcm_port}",
                f"--service-account-private-key-file={p.sa_key}", f"--root-ca-file={p.ca.cert}",
                f"--cluster-signing-cert-file={p.ca.cert}", f"--cluster-signing-key-file={p.ca.key}",
                # The in-tree test provisioner: claims bind like on a real cluster (no pods ever mount them).
                "--enable-hostpath-provisioner=true",
            ],
            kcm_port,
            lambda: _request(f"https://127.0.0.1:{kcm_port}/healthz", components) == "ok",
            deadline,
            state,
        )  # fmt: skip
        self._start(
            "kube-scheduler",
            [*common, f"--secure-port={sched_port}"],
            sched_port,
            lambda: _request(f"https://127.0.0.1:{sched_port}/healthz", components) == "ok",
            deadline,
            state,
        )
        stages = [f"--config={self.bin_dir / 'kwok-stages' / s}" for s in KWOK_STAGES]
        self._start(
            "kwok",
            [
                f"--kubeconfig={kc}", "--manage-all-nodes=true", *stages,
                "--node-lease-duration-seconds=40", "--node-ip=127.0.0.1", "--cidr=10.0.0.0/24",
                f"--server-address=127.0.0.1:{kwok_port}",  # health + metrics; --node-port means 0.0.0.0
            ],
            kwok_port,
            lambda: _request(f"http://127.0.0.1:{kwok_port}/healthz") == "ok",
            deadline,
            state,
        )  # fmt: skip

        def create_nodes() -> None:
            for node in NODES:
                _request(f"{api}/api/v1/nodes", admin, "POST", node)
            _request(f"{api}/apis/storage.k8s.io/v1/storageclasses", admin, "POST", STORAGE_CLASS)

        def ready(name: str) -> bool:
            node = json.loads(_request(f"{api}/api/v1/nodes/{name}", admin))
            conditions = node.get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        def nodes_ready() -> None:
            for name in (n["metadata"]["name"] for n in NODES):
                poll(f"node {name} to become Ready", partial(ready, name), deadline)

        self._guarded("kwok", create_nodes)
        self._guarded("kwok", nodes_ready)

    def _start(
        self,
        name: str,
        args: list[str],
        port: int,
        ready: Callable[[], bool],
        deadline: float,
        state: dict[str, Any],
        log_mode: str = "wb",
        **extra: int,
    ) -> None:
        binary = str(self.bin_dir / name)
        log_path = self.log_dir / f"{name}.log"
        t0 = time.monotonic()
        with log_path.open(log_mode) as out:
            proc = subprocess.Popen(
                [binary, *args],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                cwd=self.dir,
                start_new_session=True,  # outlives `addonstack dev-cluster up` and the terminal's ^C
            )
        self._procs[name] = proc
        record = {"pid": proc.pid, "port": port, **extra, "binary": binary, "log": str(log_path), "args": args}
        state["components"][name] = record
        self._save(state)

        def exited() -> None:
            if proc.poll() is not None:
                raise DevClusterError(f"{name} exited with code {proc.returncode}")

        self._guarded(name, lambda: poll(f"{name} on port {port}", ready, deadline, check=exited))
        state["components"][name]["ready_seconds"] = round(time.monotonic() - t0, 2)

    def _guarded(self, name: str, step: Callable[[], object]) -> None:
        """Run ``step``; on failure raise a DevClusterError carrying the tail of ``name``'s log."""
        try:
            step()
        except (DevClusterError, OSError, ValueError) as exc:
            log_path = self.log_dir / f"{name}.log"
            tail = _tail(log_path)
            raise DevClusterError(
                f"dev cluster start failed at {name}: {exc}\n--- last lines of {log_path} ---\n{tail}"
            ) from exc

    def _healthy(self) -> bool:
        state = self._load()
        if state is None or not self.kubeconfig.exists():
            return False
        if not all(_is_ours(int(c["pid"]), str(c["binary"])) for c in state["components"].values()):
            return False
        if len(state["components"]) != len(BINARIES) or "startup_seconds" not in state:
            return False
        pki = ensure_pki(self.dir / "pki")
        try:
            return _request(f"{state['server']}/readyz", _ssl_context(pki.ca.cert, pki.admin)) == "ok"
        except OSError:
            return False

    def _load(self) -> dict[str, Any] | None:
        try:
            state: dict[str, Any] = json.loads(self.state_file.read_text())
        except (OSError, ValueError):
            return None
        return state

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.state_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2) + "\n")
        tmp.replace(self.state_file)
