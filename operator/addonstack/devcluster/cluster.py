"""A real control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) on loopback, no Docker.

The components are described once in ``components.py``; this module starts them in that order on free
127.0.0.1 ports, waits for each one's readiness probe, and records pid, port, flags and log in
DIR/state.json, so another process (``addonstack dev-cluster down``) stops exactly those processes and
nothing else, and ``start_component`` restarts one with the flags of its first start.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from addonstack.devcluster.access import kubeconfig_yaml, request, ssl_context, write_private
from addonstack.devcluster.binaries import K8S_VERSION, missing_binaries, missing_message
from addonstack.devcluster.components import BY_NAME, COMPONENTS, PORT_NAMES, Component, Layout
from addonstack.devcluster.nodes import NODES, STORAGE_CLASS
from addonstack.devcluster.pki import Pki, ensure_pki
from addonstack.devcluster.processes import (
    STOP_GRACE,
    DevClusterError,
    free_ports,
    is_ours,
    kill_now,
    poll,
    rss_mib,
    stop,
    tail,
)

log = logging.getLogger(__name__)

DOWN_APISERVER_GRACE = 1.0
DATA_PREFIX = "addonstack-etcd-"


class DevCluster:
    """The control plane whose state lives in ``dir``; ``up``/``down``/``status`` work across processes."""

    def __init__(self, dir: Path, bin_dir: Path, profiling: bool = False) -> None:
        self.dir = dir
        self.bin_dir = bin_dir
        self.profiling = profiling  # kube-apiserver serves /debug/pprof (a running instance is kept as it is)
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
            raise DevClusterError(missing_message(self.bin_dir))
        t0 = time.monotonic()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(exist_ok=True)
        shm = Path("/dev/shm")
        data_dir = Path(tempfile.mkdtemp(prefix=DATA_PREFIX, dir=shm if os.access(shm, os.W_OK) else self.dir))
        lay = Layout(
            ports=dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES)), strict=True)),
            pki=ensure_pki(self.dir / "pki"),
            data_dir=data_dir,
            kubeconfig=self.kubeconfig,
            bin_dir=self.bin_dir,
            profiling=self.profiling,
        )
        state: dict[str, Any] = {
            "k8s_version": K8S_VERSION,
            "bin_dir": str(self.bin_dir),
            "data_dir": str(data_dir),
            "kubeconfig": str(self.kubeconfig),
            "server": lay.server,
            "ports": dict(lay.ports),
            "components": {},
        }
        try:
            write_private(self.kubeconfig, kubeconfig_yaml(lay.server, lay.pki.ca.cert, lay.pki.admin, "admin"))
            for comp in COMPONENTS:
                self._start(comp, comp.flags(lay), lay.ports[comp.name], lay.pki, t0 + timeout, state)
            self._seed(lay, t0 + timeout)
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
            stop(int(comp["pid"]), str(comp["binary"]), self._procs.pop(name, None), grace)
        for name, proc in list(self._procs.items()):  # started, but state.json could not record it
            stop(proc.pid, str(self.bin_dir / name), proc)
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
            alive = is_ours(int(comp["pid"]), str(comp["binary"]))
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
        _, comp = self._recorded(name)
        pid, binary, proc = int(comp["pid"]), str(comp["binary"]), self._procs.pop(name, None)
        if hard:
            kill_now(pid, binary, proc)
        stop(pid, binary, proc)

    def start_component(self, name: str, timeout: float = 60) -> None:
        """Start a component stopped by :meth:`stop_component` again: same flags, port and data; wait until
        it answers its readiness probe. Its log is appended to."""
        state, comp = self._recorded(name)
        if is_ours(int(comp["pid"]), str(comp["binary"])):
            raise DevClusterError(f"{name} (pid {comp['pid']}) is still running; stop it first")
        if "args" not in comp or name not in BY_NAME:
            raise DevClusterError(f"{name} was started by an older version without recorded flags; run `down`/`up`")
        pki, deadline = ensure_pki(self.dir / "pki"), time.monotonic() + timeout
        self._start(BY_NAME[name], list(comp["args"]), int(comp["port"]), pki, deadline, state, log_mode="ab")
        self._save(state)

    # -- internals ----------------------------------------------------------------------------------

    def _recorded(self, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
        state = self._load()
        if state is None or name not in state.get("components", {}):
            raise DevClusterError(f"no component {name!r} recorded in {self.state_file}")
        return state, state["components"][name]

    def _start(
        self,
        comp: Component,
        args: list[str],
        port: int,
        pki: Pki,
        deadline: float,
        state: dict[str, Any],
        log_mode: str = "wb",
    ) -> None:
        """Start ``comp`` with ``args``, record it in ``state`` (saved at once), and wait for its probe."""
        binary, log_path = str(comp.binary(self.bin_dir)), comp.log(self.log_dir)
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
        self._procs[comp.name] = proc
        record = {"pid": proc.pid, "port": port, "binary": binary, "log": str(log_path), "args": args}
        state["components"][comp.name] = record
        self._save(state)

        def exited() -> None:
            if proc.poll() is not None:
                raise DevClusterError(f"{comp.name} exited with code {proc.returncode}")

        ready = comp.probe.ready(port, pki)
        self._guarded(comp.name, lambda: poll(f"{comp.name} on port {port}", ready, deadline, check=exited))
        record["ready_seconds"] = round(time.monotonic() - t0, 2)

    def _seed(self, lay: Layout, deadline: float) -> None:
        """Create the fake nodes and the default StorageClass, and wait until kwok reports the nodes Ready."""
        admin = ssl_context(lay.pki.ca.cert, lay.pki.admin)

        def create() -> None:
            for node in NODES:
                request(f"{lay.server}/api/v1/nodes", admin, "POST", node)
            request(f"{lay.server}/apis/storage.k8s.io/v1/storageclasses", admin, "POST", STORAGE_CLASS)

        def ready(name: str) -> bool:
            node = json.loads(request(f"{lay.server}/api/v1/nodes/{name}", admin))
            conditions = node.get("status", {}).get("conditions") or []
            return any(c["type"] == "Ready" and c["status"] == "True" for c in conditions)

        def all_ready() -> None:
            for name in (n["metadata"]["name"] for n in NODES):
                poll(f"node {name} to become Ready", partial(ready, name), deadline)

        self._guarded("kwok", create)
        self._guarded("kwok", all_ready)

    def _guarded(self, name: str, step: Callable[[], object]) -> None:
        """Run ``step``; on failure raise a DevClusterError carrying the tail of ``name``'s log."""
        try:
            step()
        except (DevClusterError, OSError, ValueError) as exc:
            log_path = BY_NAME[name].log(self.log_dir)
            raise DevClusterError(
                f"dev cluster start failed at {name}: {exc}\n--- last lines of {log_path} ---\n{tail(log_path)}"
            ) from exc

    def _healthy(self) -> bool:
        state = self._load()
        if state is None or not self.kubeconfig.exists():
            return False
        if not all(is_ours(int(c["pid"]), str(c["binary"])) for c in state["components"].values()):
            return False
        if set(state["components"]) != set(BY_NAME) or "startup_seconds" not in state:
            return False
        pki = ensure_pki(self.dir / "pki")
        try:
            return request(f"{state['server']}/readyz", ssl_context(pki.ca.cert, pki.admin)) == "ok"
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
