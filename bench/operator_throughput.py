"""Operator throughput on the dev cluster, against a raw client writing the same objects, in one run.

Run: ``python bench/operator.py --stacks 200`` (it runs this file), after ``make setup k8s``. It starts
its own DevCluster, installs the CRD and runs ``addonstack operator run`` as a subprocess (so its RSS is
its own), then:

1. raw: the same objects rendered offline by the library, server-side applied by a lightkube AsyncClient
   (the same concurrency as the operator's workers), then waited for until every workload is available;
   each stack's latency (from the start until its last workload is available) is the floor for 2.
   Then the operator's phases run on a fresh dev cluster (``--between fresh``; ``clear`` deletes the raw
   client's namespaces instead, ``keep`` keeps them), so the operator's burst meets the cluster the raw
   burst met: not one holding the raw client's 5,800 objects and 1,000 pods, nor one that has aged (see Site).
2. operator, burst: N AddonStacks of 5 services each created at once (one namespace per stack, since
   children are named by service id); wall time until every stack is Ready (with observedGeneration) and
   the p50/p95/p99 latency from create to Ready as seen by a poller (0.5 s resolution). Object throughput
   = objects / wall time, operator/raw (target >= 0.8). A burst queues: on a 2-core dev cluster the raw
   client itself needs most of a minute for 200 stacks, so burst latency is compared with the raw floor.
2b. operator, paced: --paced-stacks more stacks (default N) arriving at --arrival-rate per second (tenants
   signing up, not one batch job); create->Ready p50 <= 5 s and p95 <= 15 s are the targets for this load.
3. resync: the API server's write requests (apiserver_request_total, verbs other than GET/LIST/WATCH)
   to the resources the operator writes, over one full drift period of the N converged stacks (target 0);
4. RSS of the operator process once it serves --rss-stacks stacks (cheap 1-service ones fill up to it;
   target < 150 MB).

Figures go to stdout and bench/results/operator-last.json; ratios against the previous run are printed.
The machine is shared, so absolute times are noisy; the ratios of one run are what to compare.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lightkube import AsyncClient, Client, codecs
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.core_v1 import Namespace

from addonstack.catalog.loader import load_catalog
from addonstack.constants import FIELD_MANAGER, LABEL_STACK
from addonstack.controller.cluster import AddonStackResource
from addonstack.controller.reconcile import APPLY_ORDER
from addonstack.controller.transport import kube_client
from addonstack.devcluster import DevCluster, cpu_seconds, fake_node, find_binaries, missing_binaries, rss_mib
from addonstack.devcluster.apimetrics import (
    operator_reads,
    operator_writes,
    reads_by,
    request_counts,
    request_seconds,
)
from addonstack.devcluster.pki import CertPair, ensure_pki
from addonstack.plan.secrets import make_rng
from addonstack.plan.spec import AddonStackSpec
from addonstack.render.crd import render_crd
from addonstack.render.kubernetes import render_kubernetes
from addonstack.render.stack import StackDefaults, plan_stack

sys.path.insert(0, str(Path(__file__).resolve().parent))
from profiles import BurstProfiles  # bench/profiles.py, beside this file

RESULTS = Path(__file__).resolve().parent / "results" / "operator-last.json"
# Light services without a database (so no setup Job), one with a volume (a PVC the provisioner binds).
SERVICES = ["it-tools", "element-web", "excalidraw", "gatus", "gotify"]  # dozzle needs the Docker-socket opt-in
TINY = ["it-tools"]
DEFAULTS = StackDefaults(
    database_host="postgres.platform.example", database_admin_secret="pg-admin", deletion_policy="Retain"
)
TARGETS = {
    "throughput_ratio": 0.8,
    "resync_writes": 0,
    "rss_mib": 150e6 / 2**20,  # 150 MB = 143.05 MiB
    "latency_p50_s": 5.0,
    "latency_p95_s": 15.0,
}


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def percentile(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q * len(s)) - 1))]


def stack_body(name: str, ns: str, services: list[str]) -> dict[str, Any]:
    return {
        "apiVersion": "addonstack.dev/v1alpha1",
        "kind": "AddonStack",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"services": services},
    }


RAW_LABEL = "bench.addonstack.dev/raw-stack"  # instead of the stack label: the operator must not watch these


def _relabel(value: Any) -> Any:
    """The same object with the stack label key renamed everywhere (labels, selectors, pod templates)."""
    if isinstance(value, dict):
        return {(RAW_LABEL if k == LABEL_STACK else k): _relabel(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_relabel(v) for v in value]
    return value


def rendered(name: str, ns: str, services: list[str], relabel: bool = False) -> list[dict[str, Any]]:
    """The children the operator would write for a stack (offline render; no owner reference). ``relabel``
    for the raw client's copy: with the stack label the operator (started later) would watch those objects
    too, and their state would count in its memory and their events in its work."""
    planned = plan_stack(load_catalog(), AddonStackSpec(services=services), name, ns, DEFAULTS, make_rng(None))
    plan, ctx = planned.plan, planned.context
    objs, _ = render_kubernetes(plan, ctx)
    objs = [_relabel(o) for o in objs] if relabel else objs
    return sorted(objs, key=lambda o: APPLY_ORDER.index(o["kind"]))


def add_nodes(http: Any, pods: int) -> None:
    """Fake (kwok) nodes with room for ``pods`` pods (the dev cluster's own two hold 110 each)."""
    per_node = 1000
    for i in range(-(-pods // per_node)):
        node = fake_node(f"bench-node-{i}", "amd64", {}, {"pods": str(per_node), "cpu": "2000", "memory": "8Ti"})
        http.post("/api/v1/nodes", json=node).raise_for_status()


def make_namespaces(client: Client, names: Iterable[str]) -> None:
    for n in names:
        client.create(Namespace(metadata=ObjectMeta(name=n, labels={"addonstack.dev/bench": "true"})))


def clear_namespaces(client: Client, names: list[str], timeout: float) -> float:
    """Delete ``names`` and wait until they are gone; seconds it took.

    The raw client's stacks are removed before the operator's burst, so both bursts start from the same cluster:
    kept, they are 5,800 objects and 1,000 pods more for the API server, etcd and the controllers during the
    operator's phase only (a Service's apply, the slowest request of a burst, allocates from a fuller range)."""
    t0 = time.monotonic()
    for name in names:
        client.delete(Namespace, name)
    left = set(names)
    while left:
        if time.monotonic() - t0 > timeout:
            raise SystemExit(f"timed out after {timeout:.0f} s: {len(left)} namespaces of the raw client not gone")
        time.sleep(1.0)
        left &= {ns.metadata.name for ns in client.list(Namespace, labels={"addonstack.dev/bench": "true"})}
    return time.monotonic() - t0


def install_crd(client: Client) -> None:
    client.apply(codecs.from_dict(render_crd()), field_manager="addonstack-bench", force=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        crd = client.get(CustomResourceDefinition, "addonstacks.addonstack.dev")
        if any(c.type == "Established" and c.status == "True" for c in (crd.status.conditions or [])):
            return
        time.sleep(0.2)
    raise SystemExit("the AddonStack CRD did not become established in 60 s")


def wait_all(what: str, probe: Callable[[], set[Any]], want: set[Any], timeout: float, seen: dict[Any, float]) -> None:
    """Poll until ``probe`` returns every element of ``want``; record when each was first seen."""
    deadline = time.monotonic() + timeout
    last_report = 0.0
    while True:
        now = time.monotonic()
        try:
            got = probe() & want
        except Exception as exc:  # a busy API server timing out one poll is not a failed run
            log(f"  poll failed ({exc.__class__.__name__}); retrying")
            got = set()
        for k in got - seen.keys():
            seen[k] = now
        if len(seen) >= len(want):
            return
        if now > deadline:
            raise SystemExit(f"timed out after {timeout:.0f} s: {len(seen)}/{len(want)} {what}")
        if now - last_report > 15:
            log(f"  {len(seen)}/{len(want)} {what}")
            last_report = now
        time.sleep(0.5)


# ---- API server metrics ---------------------------------------------------------------------------

# ---- raw client -----------------------------------------------------------------------------------


RAW_TRANSPORTS = ("httpx", "aiohttp")  # lightkube's own (the yardstick since the first session), the operator's


async def raw_apply(
    kubeconfig: Path, stacks: list[list[dict[str, Any]]], concurrency: int, transport: str = "httpx"
) -> tuple[float, int]:
    """Server-side apply every object, stacks in parallel (bounded), objects of a stack in order; over
    lightkube's httpx transport, or (``aiohttp``) the operator's own (controller/transport.py)."""
    client = (
        kube_client(str(kubeconfig), field_manager=FIELD_MANAGER)
        if transport == "aiohttp"
        else AsyncClient(config=KubeConfig.from_file(str(kubeconfig)), field_manager=FIELD_MANAGER)
    )
    sem = asyncio.Semaphore(concurrency)
    count = 0

    async def one(objs: list[dict[str, Any]]) -> None:
        nonlocal count
        async with sem:
            for obj in objs:
                await client.apply(codecs.from_dict(obj), force=True)
                count += 1

    t0 = time.monotonic()
    await asyncio.gather(*(one(s) for s in stacks))
    elapsed = time.monotonic() - t0
    await client.close()
    return elapsed, count


class Availability:
    """When each workload (Deployment or StatefulSet) was first seen with all its replicas ready, and each
    AddonStack first seen Ready for its generation, from watches: a poll of every stack and workload twice a
    second loaded the two cores it measured (3 MB of stacks per poll at 600 stacks) and rounded to 0.5 s."""

    def __init__(self, kubeconfig: Path) -> None:
        self.client = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="addonstack-bench")
        self.ready_at: dict[tuple[str, str], float] = {}
        self.stack_ready_at: dict[tuple[str, str], float] = {}
        self.stopped = threading.Event()  # its cluster is going down: the watches end
        for kind, into, ready in (
            (Deployment, self.ready_at, self._workload_ready),
            (StatefulSet, self.ready_at, self._workload_ready),
            (AddonStackResource, self.stack_ready_at, self._stack_ready),
        ):
            threading.Thread(target=self._watch, args=(kind, into, ready), daemon=True).start()

    @staticmethod
    def _workload_ready(w: Any) -> bool:
        want = w.spec.replicas if w.spec and w.spec.replicas is not None else 1
        return bool(w.status and (w.status.readyReplicas or 0) >= want)

    @staticmethod
    def _stack_ready(obj: Any) -> bool:
        d = obj.to_dict()
        st = d.get("status") or {}
        ok = any(c.get("type") == "Ready" and c.get("status") == "True" for c in st.get("conditions") or [])
        return ok and st.get("observedGeneration") == d["metadata"].get("generation")

    def _watch(self, kind: Any, into: dict[tuple[str, str], float], ready: Callable[[Any], bool]) -> None:
        while not self.stopped.is_set():
            try:
                for _, obj in self.client.watch(kind, namespace="*"):
                    key = (obj.metadata.namespace or "", obj.metadata.name or "")
                    if key not in into and ready(obj):
                        into[key] = time.monotonic()
            except Exception:  # the stream broke (or the cluster is going down): open it again
                time.sleep(0.5)

    def stacks_ready(self) -> set[tuple[str, str]]:
        return set(self.stack_ready_at)

    def workloads_ready(self) -> set[tuple[str, str]]:
        return set(self.ready_at)

    def stack_at(self, ns: str, workloads: Iterable[str]) -> float | None:
        """When the last of a stack's workloads became available (None: not all yet)."""
        times = [self.ready_at.get((ns, w)) for w in workloads]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)


def raw_paced_namespaces(n: int) -> list[str]:
    return [f"rawp-{i:04d}" for i in range(n)]


def raw_paced(
    kubeconfig: Path, client: Client, watch: Availability, n: int, rate: float, timeout: float
) -> dict[str, Any]:
    """The floor for the paced phase: the same children, applied by the raw client stack by stack at the same
    arrival rate, and each stack's latency until its last workload is available."""
    names = raw_paced_namespaces(n)
    make_namespaces(client, names)
    stacks = [rendered(f"s{i:04d}", ns, SERVICES, relabel=True) for i, ns in enumerate(names)]
    workloads = [o["metadata"]["name"] for o in stacks[0] if o["kind"] in ("Deployment", "StatefulSet")]
    log(f"raw paced: applying {n} stacks at {rate:g} per second")
    arrived: dict[str, float] = {}

    async def run() -> None:
        api = AsyncClient(config=KubeConfig.from_file(str(kubeconfig)), field_manager=FIELD_MANAGER)

        async def one(ns: str, objs: list[dict[str, Any]]) -> None:
            for obj in objs:
                await api.apply(codecs.from_dict(obj), force=True)

        start = time.monotonic()
        tasks = []
        for i, (ns, objs) in enumerate(zip(names, stacks, strict=True)):
            await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
            arrived[ns] = time.monotonic()
            tasks.append(asyncio.create_task(one(ns, objs)))
        await asyncio.gather(*tasks)
        await api.close()

    asyncio.run(run())
    deadline = time.monotonic() + timeout
    while any(watch.stack_at(ns, workloads) is None for ns in names):
        if time.monotonic() > deadline:
            raise SystemExit("raw paced: timed out waiting for workloads")
        time.sleep(0.5)
    done = [watch.stack_at(ns, workloads) or 0.0 for ns in names]
    lat = [at - arrived[ns] for at, ns in zip(done, names, strict=True)]
    return {
        "stacks": n,
        "wall_s": round(max(done) - min(arrived.values()), 1),
        "latency_p50_s": round(statistics.median(lat), 2),
        "latency_p95_s": round(percentile(lat, 0.95), 2),
    }


# ---- the run --------------------------------------------------------------------------------------


def start_operator(
    kubeconfig: Path, drift: float, log_path: Path, extra: tuple[str, ...] = ()
) -> subprocess.Popen[bytes]:
    exe = Path(sys.executable).with_name("addonstack")
    cmd = [str(exe) if exe.exists() else "addonstack", "operator", "run", "--drift-interval", str(drift)]
    cmd += [
        "--database-host",
        DEFAULTS.database_host or "",
        "--database-admin-secret",
        DEFAULTS.database_admin_secret or "",
        *extra,
    ]
    # The operator as shipped: without the bench-only `kubernetes` package, which kopf imports when it is
    # installed (about +12 MiB RSS and +0.5 s start-up); a stub that fails to import hides it.
    stub = log_path.parent / "no-kubernetes" / "kubernetes"
    stub.mkdir(parents=True, exist_ok=True)
    (stub / "__init__.py").write_text("raise ImportError('hidden by bench/operator_throughput.py')\n")
    path = os.pathsep.join(p for p in (str(stub.parent), os.environ.get("PYTHONPATH", "")) if p)
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "ADDONSTACK_HEALTH_PORT": "0",
        "PYTHONPATH": path,
        "ADDONSTACK_METRICS_BIND_ADDRESS": "0",
    }
    with log_path.open("wb") as out:
        return subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)


def started(op: subprocess.Popen[bytes], log_path: Path, timeout: float = 120.0) -> None:
    """Wait for the operator's start-up line, then one second for kopf's watches to open (a fixed sleep
    counted a slow start-up on a loaded machine as latency of the first stacks)."""
    deadline = time.monotonic() + timeout
    while "addonstack operator started" not in log_path.read_text(errors="replace"):
        if op.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the operator did not start: see {log_path}")
        time.sleep(0.2)
    time.sleep(1.0)


def count_objects(client: Client, namespaces: set[str], kinds: Iterable[Any]) -> int:
    """Objects labelled as a stack's children (not e.g. the kube-root-ca.crt ConfigMap of each namespace)."""
    return sum(
        1
        for k in kinds
        for o in client.list(k, namespace="*")
        if o.metadata.namespace in namespaces and LABEL_STACK in (o.metadata.labels or {})
    )


@dataclass
class Site:
    """One dev cluster and what the bench keeps open to it. Each side of the comparison gets a fresh one
    (``--between fresh``): the same raw burst run three times on one cluster, its namespaces deleted between
    runs, cost 124, 131 and 163 CPU-seconds (2026-12-07), so the phase that ran second was measured on a
    cluster that had become slower for the same work."""

    cluster: DevCluster
    kubeconfig: Path
    client: Client
    http: Any
    watch: Availability
    pids: dict[str, int]

    @classmethod
    def start(cls, where: Path, bin_dir: Path, profiling: bool, nodes: int) -> Site:
        cluster = DevCluster(where, bin_dir, profiling=profiling)
        log(f"starting the dev cluster in {where}")
        kubeconfig = cluster.up()
        config = KubeConfig.from_file(str(kubeconfig))
        client = Client(config=config, field_manager="addonstack-bench", timeout=client_adapter.httpx.Timeout(60))
        http = client_adapter.Client(
            config.get(), client_adapter.ConnectionParams(timeout=client_adapter.httpx.Timeout(60))
        )
        install_crd(client)
        add_nodes(http, nodes)
        pids = {name: int(c["pid"]) for name, c in cluster.status()["components"].items()} | {"bench": os.getpid()}
        return cls(cluster, kubeconfig, client, http, Availability(kubeconfig), pids)

    def parts(self) -> tuple[DevCluster, Path, Client, Any, Availability, dict[str, int]]:
        return self.cluster, self.kubeconfig, self.client, self.http, self.watch, self.pids

    def stop(self) -> None:
        self.watch.stopped.set()
        self.cluster.down()


@dataclass
class RawBurst:
    result: dict[str, Any]
    namespaces: list[str]
    objects_per_s: float


def raw_burst(
    site: Site, n: int, workers: int, timeout: float, profiles: BurstProfiles | None, transport: str = "httpx"
) -> RawBurst:
    """The raw client's burst: every stack's objects server-side applied, until every workload is available."""
    _, kubeconfig, client, http, watch, pids = site.parts()
    raw_ns = [f"raw-{i:04d}" for i in range(n)]
    make_namespaces(client, raw_ns)
    raw_objs = [rendered(f"s{i:04d}", ns, SERVICES, relabel=True) for i, ns in enumerate(raw_ns)]
    n_objects = sum(len(s) for s in raw_objs)
    workloads = {
        (o["metadata"]["namespace"], o["metadata"]["name"])
        for s in raw_objs
        for o in s
        if o["kind"] in ("Deployment", "StatefulSet")
    }
    log(f"raw client: applying {n_objects} objects of {n} stacks")
    cpu0 = cpu_used(pids)
    counted = served(http)
    t0 = time.monotonic()
    if profiles is not None:
        profiles.start("raw")
    apply_s, applied = asyncio.run(raw_apply(kubeconfig, raw_objs, workers, transport))
    wait_all("raw workloads available", watch.workloads_ready, workloads, timeout, {})
    seen = {k: watch.ready_at[k] for k in workloads}
    raw_s = max(seen.values()) - t0
    raw_lat = [max(at - t0 for (ns, _), at in seen.items() if ns == stack_ns) for stack_ns in raw_ns]
    result = {
        "objects": applied,
        "transport": transport,
        "apply_s": round(apply_s, 2),
        "until_available_s": round(raw_s, 2),
        "objects_per_s": round(applied / raw_s, 1),
        "apply_objects_per_s": round(applied / apply_s, 1),
        "latency_p50_s": round(statistics.median(raw_lat), 2),
        "latency_p95_s": round(percentile(raw_lat, 0.95), 2),
        "requests": requests_since(http, counted, n),
        "cpu_s": cpu_since(pids, cpu0),
    }
    log(f"raw: {applied} objects applied in {apply_s:.1f} s, all workloads available after {raw_s:.1f} s")
    return RawBurst(result, raw_ns, applied / raw_s)


@dataclass
class OperatorBurst:
    result: dict[str, Any]
    op: subprocess.Popen[bytes]
    created: dict[tuple[str, str], float]
    objects_per_s: float


def operator_burst(
    site: Site,
    n: int,
    drift_interval: float,
    operator_args: tuple[str, ...],
    work: Path,
    timeout: float,
    profiles: BurstProfiles | None,
) -> OperatorBurst:
    """The operator's burst: N AddonStacks created at once, until every one is Ready. The operator keeps running
    (the caller stops it)."""
    _, kubeconfig, client, _, _, _ = site.parts()
    op_ns = [f"op-{i:04d}" for i in range(n)]
    make_namespaces(client, op_ns)
    op = start_operator(kubeconfig, drift_interval, work / "operator.log", operator_args)
    try:
        return _measure_operator(site, n, op, op_ns, drift_interval, work, timeout, profiles)
    except BaseException:
        stop_operator(op)
        raise


def _measure_operator(
    site: Site,
    n: int,
    op: subprocess.Popen[bytes],
    op_ns: list[str],
    drift_interval: float,
    work: Path,
    timeout: float,
    profiles: BurstProfiles | None,
) -> OperatorBurst:
    _, _, client, http, watch, pids = site.parts()
    started(op, work / "operator.log")  # kopf start-up (imports, login, CRD scan) is not what is measured
    if op.poll() is not None:
        raise SystemExit(f"the operator exited at start: see {work / 'operator.log'}")
    log(f"operator: creating {n} AddonStacks of {len(SERVICES)} services")
    created: dict[tuple[str, str], float] = {}
    pids["operator"] = op.pid
    cpu0 = cpu_used(pids)
    counted = served(http)
    t0 = time.monotonic()
    if profiles is not None:
        profiles.start("operator", {"operator": op.pid})
    for i, ns in enumerate(op_ns):
        client.create(codecs.from_dict(stack_body(f"s{i:04d}", ns, SERVICES)))
        created[(ns, f"s{i:04d}")] = time.monotonic()
    create_s = time.monotonic() - t0
    wait_all("stacks Ready", watch.stacks_ready, set(created), timeout, {})
    ready = {k: watch.stack_ready_at[k] for k in created}
    op_s = max(ready.values()) - t0
    latencies = [ready[k] - created[k] for k in created]
    kinds = {codecs.from_dict(o).__class__ for o in rendered("s0000", op_ns[0], SERVICES)}
    op_objects = count_objects(client, set(op_ns), kinds)
    result = {
        "objects": op_objects,
        "create_requests_s": round(create_s, 2),
        "until_all_ready_s": round(op_s, 2),
        "objects_per_s": round(op_objects / op_s, 1),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(percentile(latencies, 0.95), 2),
        "latency_p99_s": round(percentile(latencies, 0.99), 2),
        "drift_interval_s": drift_interval,
        "requests": requests_since(http, counted, n),
        "cpu_s": cpu_since(pids, cpu0),
    }
    log(f"operator: {op_objects} objects, all {n} stacks Ready after {op_s:.1f} s")
    return OperatorBurst(result, op, created, op_objects / op_s)


def stop_operator(op: subprocess.Popen[bytes]) -> None:
    if op.poll() is None:
        op.terminate()
        try:
            op.wait(30)
        except subprocess.TimeoutExpired:
            op.kill()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", type=int, default=50, help="AddonStacks of 5 services (default 50)")
    ap.add_argument("--rss-stacks", type=int, default=1000, help="stacks served when RSS is read (0: skip)")
    ap.add_argument("--drift-interval", type=float, default=20.0, help="the operator's resync period, s")
    ap.add_argument("--workers", type=int, default=20, help="raw client concurrency (the operator's max_workers)")
    ap.add_argument("--raw-transport", choices=RAW_TRANSPORTS, default="httpx",
                    help="the raw client's HTTP transport under lightkube: its own httpx one (default, the yardstick "
                    "of every earlier figure) or the operator's aiohttp one")  # fmt: skip
    ap.add_argument("--arrival-rate", type=float, default=1.0, help="paced phase: stacks created per second (0: skip)")
    ap.add_argument("--paced-stacks", type=int, help="paced phase: how many stacks (default: --stacks)")
    ap.add_argument(
        "--raw-paced",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="before the operator's paced phase, the raw client's at the same rate (its floor)",
    )
    ap.add_argument(
        "--between",
        choices=("fresh", "clear", "keep"),
        default="fresh",
        help="after the raw client's phases: the operator's on a fresh dev cluster (default), on the same one "
        "with the raw client's namespaces deleted, or with them kept",
    )
    ap.add_argument("--operator-arg", action="append", default=[], help="extra flag for `operator run` (repeat)")
    ap.add_argument("--timeout", type=float, default=900.0)
    ap.add_argument("--keep", action="store_true", help="leave the work directory (logs) in place")
    ap.add_argument(
        "--profile",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="record kube-apiserver (both bursts) and the operator (its burst) for SECONDS (bench/profiles.py); "
        "the files stay in the work directory",
    )
    args = ap.parse_args()
    n = args.stacks
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `finally` stops the cluster
    signal.signal(signal.SIGINT, signal.default_int_handler)

    bin_dir = find_binaries()
    if missing := missing_binaries(bin_dir):
        raise SystemExit(f"missing Kubernetes binaries in {bin_dir}: {', '.join(missing)}; run `make k8s`")
    work = Path(tempfile.mkdtemp(prefix="addonstack-bench-"))
    # every stack's workloads in both phases, the small stacks, and room to spare
    nodes = (2 * n + (args.paced_stacks or n)) * len(SERVICES) + max(0, args.rss_stacks - n) + 500
    site = Site.start(work / "cluster", bin_dir, args.profile > 0, nodes)
    profiles = _profiles(site.cluster, work, args.profile)
    op: subprocess.Popen[bytes] | None = None
    results: dict[str, Any] = {"stacks": n, "services_per_stack": len(SERVICES), "services": SERVICES}
    results["between"] = args.between
    try:
        cluster, kubeconfig, client, http, watch, pids = site.parts()
        # -- raw client first (the operator is not running yet, so it cannot interfere)
        raw = raw_burst(site, n, args.workers, args.timeout, profiles, args.raw_transport)
        results["raw"], raw_ns = raw.result, raw.namespaces
        if args.arrival_rate > 0 and args.raw_paced:
            cpu0 = cpu_used(pids)
            results["raw_paced"] = raw_paced(
                kubeconfig, client, watch, args.paced_stacks or n, args.arrival_rate, args.timeout
            )
            results["raw_paced"]["cpu_s"] = cpu_since(pids, cpu0)

        if args.between == "fresh":
            log("raw: stopping its dev cluster; the operator's bursts run on a fresh one")
            site.stop()
            site = Site.start(work / "cluster-operator", bin_dir, args.profile > 0, nodes)
            cluster, kubeconfig, client, http, watch, pids = site.parts()
            if profiles is not None:
                profiles.moved(*_profile_target(cluster))
        elif args.between == "clear":
            gone = raw_ns + (raw_paced_namespaces(args.paced_stacks or n) if "raw_paced" in results else [])
            log(f"raw: deleting its {len(gone)} namespaces, so the operator's burst starts from the same cluster")
            results["raw_cleared_s"] = round(clear_namespaces(client, gone, args.timeout), 1)
            log(f"raw: namespaces gone after {results['raw_cleared_s']} s")

        # -- operator
        burst = operator_burst(site, n, args.drift_interval, tuple(args.operator_arg), work, args.timeout, profiles)
        op, created, results["operator"] = burst.op, burst.created, burst.result
        results["throughput_ratio"] = round(burst.objects_per_s / raw.objects_per_s, 3)
        results["speed_corrected_ratio"] = speed_corrected(
            results["throughput_ratio"], raw.result["cpu_s"], burst.result["cpu_s"]
        )
        if profiles is not None:
            results["profiles"] = [str(p) for p in profiles.wait()]
            log(f"profiles: {', '.join(results['profiles']) or 'none'}")
            for problem in profiles.problems:
                log(f"  {problem}")

        if args.arrival_rate > 0:
            cpu0 = cpu_used(pids)
            results["paced"] = paced(
                client, http, kubeconfig, watch, args.paced_stacks or n, args.arrival_rate, args.timeout
            )
            results["paced"]["cpu_s"] = cpu_since(pids, cpu0)

        # -- resync of the converged stacks: one settling period, then one measured period
        log(f"resync: settling for one drift period ({args.drift_interval:.0f} s), then measuring one period")
        time.sleep(args.drift_interval + 5)
        before, cpu0 = request_counts(http), cpu_used(pids)
        time.sleep(args.drift_interval + 5)
        delta = request_counts(http)
        delta.subtract(before)
        writes = operator_writes(delta)
        results["resync"] = {
            "period_s": args.drift_interval + 5,
            "writes": sum(writes.values()),
            "writes_by_verb_resource": writes,
            "reads": operator_reads(delta),
            "reads_by_verb_resource": reads_by(delta),  # every resource, every client
            "cpu_s": cpu_since(pids, cpu0),
        }
        log(f"resync: {sum(writes.values())} writes {writes or ''}, {operator_reads(delta)} reads")

        # -- RSS with --rss-stacks stacks
        if args.rss_stacks:
            op_rss_n = rss_mib(op.pid) or 0.0
            results["rss_mib_at_n"] = round(op_rss_n, 1)
            extra = max(0, args.rss_stacks - n)
            tiny_ns = [f"tiny-{i:04d}" for i in range(extra)]
            log(f"rss: operator RSS {op_rss_n:.0f} MiB at {n} stacks; adding {extra} 1-service stacks")
            make_namespaces(client, tiny_ns)
            names = set()
            for i, ns in enumerate(tiny_ns):
                client.create(codecs.from_dict(stack_body(f"t{i:04d}", ns, TINY)))
                names.add((ns, f"t{i:04d}"))
            seen_t: dict[Any, float] = {}
            wait_all("small stacks Ready", watch.stacks_ready, names | set(created), args.timeout * 2, seen_t)
            time.sleep(args.drift_interval + 5)  # a full resync of all of them
            rss = rss_mib(op.pid) or 0.0
            hwm = _hwm_mib(op.pid)
            results["rss"] = {"stacks": n + extra, "rss_mib": round(rss, 1), "peak_rss_mib": round(hwm, 1)}
            log(f"rss: {rss:.0f} MiB (peak {hwm:.0f} MiB) at {n + extra} stacks")
        if op.poll() is not None:
            raise SystemExit(f"the operator exited during the run: see {work / 'operator.log'}")
    finally:
        if op is not None:
            stop_operator(op)
        site.stop()
        if not (args.keep or args.profile):
            for p in sorted(work.rglob("*"), reverse=True):
                if p.is_file() or p.is_symlink():
                    p.unlink()
                else:
                    p.rmdir()
            work.rmdir()
        report(results)


def _profiles(cluster: DevCluster, work: Path, seconds: float) -> BurstProfiles | None:
    if seconds <= 0:
        return None
    return BurstProfiles(work / "profiles", *_profile_target(cluster), seconds)


def _profile_target(cluster: DevCluster) -> tuple[str, Path, CertPair]:
    """What the recorders reach kube-apiserver's profiler with: its URL, the CA and the admin's certificate."""
    pki = ensure_pki(cluster.dir / "pki")
    return str(cluster.status()["server"]), pki.ca.cert, pki.admin


def paced(
    client: Client, http: Any, kubeconfig: Path, watch: Availability, n: int, rate: float, timeout: float
) -> dict[str, Any]:
    """n stacks created one every 1/rate s by a second client while this one polls: create->Ready under load,
    with when each stack's last workload became available (the cluster's share of that time) and the API
    requests the phase cost per stack."""
    names = [(f"paced-{i:04d}", f"p{i:04d}") for i in range(n)]
    make_namespaces(client, [ns for ns, _ in names])
    log(f"paced: creating {n} AddonStacks at {rate:g} per second")
    created: dict[tuple[str, str], float] = {}
    creator = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="addonstack-bench")

    def create_all() -> None:
        start = time.monotonic()
        for i, (ns, name) in enumerate(names):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            creator.create(codecs.from_dict(stack_body(name, ns, SERVICES)))
            created[(ns, name)] = time.monotonic()

    before = request_counts(http)
    thread = threading.Thread(target=create_all, daemon=True)
    thread.start()
    wait_all("paced stacks Ready", watch.stacks_ready, set(names), timeout, {})
    ready = {k: watch.stack_ready_at[k] for k in names}
    thread.join()
    delta = request_counts(http)
    delta.subtract(before)
    latencies = [ready[k] - created[k] for k in names]
    wall = max(ready.values()) - min(created.values())
    workloads = [
        o["metadata"]["name"] for o in rendered("p", "paced", SERVICES) if o["kind"] in ("Deployment", "StatefulSet")
    ]
    available = [(watch.stack_at(ns, workloads) or ready[(ns, name)]) - created[(ns, name)] for ns, name in names]
    return {
        "workloads_available_p50_s": round(statistics.median(available), 2),
        "workloads_available_p95_s": round(percentile(available, 0.95), 2),
        "operator_reads_per_stack": round(operator_reads(delta) / n, 1),
        "operator_writes_per_stack": round(sum(operator_writes(delta).values()) / n, 1),
        "requests_per_stack": round(sum(v for v in delta.values() if v > 0) / n, 1),
        "stacks": n,
        "wall_s": round(wall, 1),
        "arrival_rate_per_s": rate,
        "objects_per_s_offered": round(rate * len(rendered("p", "paced", SERVICES)), 1),
        "latency_p50_s": round(statistics.median(latencies), 2),
        "latency_p95_s": round(percentile(latencies, 0.95), 2),
        "latency_p99_s": round(percentile(latencies, 0.99), 2),
    }


Served = tuple[Counter[tuple[str, str, str]], dict[tuple[str, str, str], float]]


def served(http: Any) -> Served:
    return request_counts(http), request_seconds(http)


def requests_since(http: Any, before: Served, n: int) -> dict[str, Any]:
    """What the API server served since ``before`` (every client: the cluster's controllers too), per stack:
    reads (GET, LIST), writes (anything but GET, LIST, WATCH), the ten most frequent verb/resource pairs, and
    the ten that took the most of the server's time (seconds summed over requests; WATCH left out)."""
    counts, seconds = served(http)
    counts.subtract(before[0])
    pairs: Counter[str] = Counter()
    busy: dict[str, float] = {}
    for (verb, resource, sub), k in counts.items():
        name = f"{verb} {resource}{'/' + sub if sub else ''}"
        if k > 0 and verb != "WATCH":
            pairs[name] += k
        spent = seconds.get((verb, resource, sub), 0.0) - before[1].get((verb, resource, sub), 0.0)
        if spent > 0 and verb != "WATCH":
            busy[name] = busy.get(name, 0.0) + spent
    reads = sum(k for key, k in pairs.items() if key.split()[0] in ("GET", "LIST"))
    slowest = sorted(busy.items(), key=lambda kv: -kv[1])[:10]
    return {
        "reads_per_stack": round(reads / n, 1),
        "writes_per_stack": round((sum(pairs.values()) - reads) / n, 1),
        "top_per_stack": {key: round(k / n, 1) for key, k in pairs.most_common(10)},
        "all_per_stack": {key: round(k / n, 2) for key, k in sorted(pairs.items())},
        "server_seconds": round(sum(busy.values()), 1),
        "server_seconds_top": {key: round(v, 1) for key, v in slowest},
    }


# The control plane's work that is the same in both bursts: kube-scheduler binds the same 1,000 pods and kwok runs
# them and reports their status (POST pods/binding and PATCH pods/status: 5.0 per stack in both). Their CPU-seconds in
# a burst gauge how fast the machine ran during it: on this shared machine the raw client's burst took 48.6 to 72.4 s
# for the same work, and its seconds per gauge CPU-second stayed within 6.53 to 7.11 (docs/performance.md,
# thirteenth session). kube-apiserver and etcd serve what the operator adds (its reads, status patches, Events), and
# kube-controller-manager's garbage collector follows the owner references the operator's children carry (about 3 %
# more of its CPU in the operator's burst, at the same speed), so they are left out.
GAUGE = ("kube-scheduler", "kwok")


def gauge_cpu(cpu: dict[str, float]) -> float:
    """CPU-seconds of the components whose work is the same in both bursts (:data:`GAUGE`)."""
    return round(sum(cpu.get(name, 0.0) for name in GAUGE), 1)


def speed_corrected(ratio: float, raw_cpu: dict[str, float], op_cpu: dict[str, float]) -> float:
    """The throughput ratio as if the machine had run both bursts at one speed: the operator's burst is credited
    with the time a slower machine cost it (its gauge took more CPU-seconds for the same work), the raw client's
    likewise. The gauge's periodic work (kwok's node heartbeats: up to 0.015 CPU-s per second) grows with the
    longer burst, which favours the operator's by about one per cent."""
    raw_g, op_g = gauge_cpu(raw_cpu), gauge_cpu(op_cpu)
    return round(ratio * op_g / raw_g, 3) if raw_g > 0 and op_g > 0 else ratio


def cpu_used(pids: dict[str, int]) -> dict[str, float]:
    """CPU seconds each process has used so far (user + system), by component name."""
    return {name: cpu_seconds(pid) or 0.0 for name, pid in pids.items()}


def cpu_since(pids: dict[str, int], before: dict[str, float]) -> dict[str, float]:
    """CPU seconds each process used since ``before``, busiest first, and their ``total``: on two cores, whether
    a phase was bound by the machine and which process the time went to."""
    spent = {k: round(v - before.get(k, 0.0), 1) for k, v in cpu_used(pids).items()}
    return {"total": round(sum(spent.values()), 1), **dict(sorted(spent.items(), key=lambda kv: -kv[1]))}


def _hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_line(what: str, cpu: dict[str, float], phase: dict[str, Any] | None = None) -> str:
    """``CPU seconds, <what>: total 341.4, kube-apiserver 180.5, ...``; for a phase with a wall time (the paced
    ones) also `` (over 200.8 s: 1.70 of 2 cores busy)``: whether it was bound by the machine's CPU, where latency
    is mostly queueing, or had room to spare."""
    busy = ""
    if phase is not None and phase.get("wall_s"):
        busy = f" (over {phase['wall_s']} s: {cpu['total'] / phase['wall_s']:.2f} of {os.cpu_count()} cores busy)"
    return f"CPU seconds, {what}{busy}: " + ", ".join(f"{k} {v}" for k, v in cpu.items())


def speed_line(corrected: float, raw_s: float, raw_cpu: dict[str, float], op_s: float, op_cpu: dict[str, float]) -> str:
    """``speed-corrected operator/raw: 0.86 (... whose work is the same in both: raw 6.73, operator 7.80)``."""
    raw_g, op_g = gauge_cpu(raw_cpu), gauge_cpu(op_cpu)
    per = f"raw {raw_s / raw_g:.2f}, operator {op_s / op_g:.2f}" if raw_g and op_g else "no gauge"
    return (
        f"speed-corrected operator/raw: {corrected:.2f} (each burst's seconds per CPU-second of "
        f"{', '.join(GAUGE)}, whose work is the same in both: {per})"
    )


def report(results: dict[str, Any]) -> None:
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}

    def vs(path: list[str]) -> str:
        cur: Any = results
        prev: Any = previous
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
            prev = prev.get(p) if isinstance(prev, dict) else None
        if isinstance(cur, int | float) and isinstance(prev, int | float) and prev:
            return f"{cur / prev:.2f}x previous"
        return "no previous run"

    print()
    print(f"stacks: {results['stacks']} x {results['services_per_stack']} services ({', '.join(results['services'])})")
    if raw := results.get("raw"):
        print(
            f"raw client:  {raw['objects']} objects, applied in {raw['apply_s']} s ({raw['apply_objects_per_s']}/s), "
            f"workloads available after {raw['until_available_s']} s -> {raw['objects_per_s']} objects/s"
        )
    if op := results.get("operator"):
        print(
            f"operator:    {op['objects']} objects, all Ready after {op['until_all_ready_s']} s -> "
            f"{op['objects_per_s']} objects/s; create->Ready p50 {op['latency_p50_s']} s, "
            f"p95 {op.get('latency_p95_s')} s, p99 {op['latency_p99_s']} s "
            f"(drift interval {op['drift_interval_s']} s)  [{vs(['operator', 'until_all_ready_s'])}]"
        )
        if raw and "latency_p50_s" in raw:
            print(
                f"burst of {results['stacks']}: create->Ready p50 {op['latency_p50_s']} s, "
                f"p95 {op['latency_p95_s']} s; "
                f"the raw client's own p50 {raw['latency_p50_s']} s, p95 {raw['latency_p95_s']} s "
                f"(operator/raw p50 {op['latency_p50_s'] / max(raw['latency_p50_s'], 0.01):.2f})"
            )
        ratio = results["throughput_ratio"]
        print(
            f"throughput operator/raw: {ratio:.2f} (target >= {TARGETS['throughput_ratio']}: "
            f"{'met' if ratio >= TARGETS['throughput_ratio'] else 'NOT met'})  [{vs(['throughput_ratio'])}]"
        )
        if raw and (corrected := results.get("speed_corrected_ratio")) is not None:
            print(speed_line(corrected, raw["until_available_s"], raw["cpu_s"], op["until_all_ready_s"], op["cpu_s"]))
        for who, phase in (("raw client", raw), ("operator", op)):
            if phase and (req := phase.get("requests")):
                top = ", ".join(f"{k} {v}" for k, v in req["top_per_stack"].items())
                busiest = ", ".join(f"{k} {v} s" for k, v in req.get("server_seconds_top", {}).items())
                print(
                    f"API requests per stack, {who} phase (all clients): {req['reads_per_stack']} reads, "
                    f"{req['writes_per_stack']} writes; {top}"
                )
                print(f"API server time, {who} phase: {req.get('server_seconds')} s of requests; {busiest}")
            if phase and (cpu := phase.get("cpu_s")):
                print(cpu_line(f"{who} phase", cpu))
    if pc := results.get("paced"):
        print(
            f"paced: {pc['stacks']} stacks at {pc['arrival_rate_per_s']}/s ({pc['objects_per_s_offered']} objects/s "
            f"offered): create->Ready p99 {pc['latency_p99_s']} s  [{vs(['paced', 'latency_p50_s'])} p50]"
        )
        if "workloads_available_p50_s" in pc:
            print(
                f"paced: workloads available p50 {pc['workloads_available_p50_s']} s, p95 "
                f"{pc['workloads_available_p95_s']} s after create; per stack {pc['operator_reads_per_stack']} reads "
                f"and {pc['operator_writes_per_stack']} writes of the operator's resources, "
                f"{pc['requests_per_stack']} requests of all clients (polls included)"
            )
        if rp := results.get("raw_paced"):
            print(
                f"raw client paced at the same rate (the floor): workloads available p50 {rp['latency_p50_s']} s, "
                f"p95 {rp['latency_p95_s']} s"
            )
            if cpu := rp.get("cpu_s"):
                print(cpu_line("raw paced phase", cpu, rp))
        if cpu := pc.get("cpu_s"):
            print(cpu_line("paced phase", cpu, pc))
        met = {k: pc[k] <= TARGETS[k] for k in ("latency_p50_s", "latency_p95_s")}
        print(
            f"paced create->Ready p50 {pc['latency_p50_s']} s (target <= {TARGETS['latency_p50_s']} s: "
            f"{'met' if met['latency_p50_s'] else 'NOT met'}), p95 {pc['latency_p95_s']} s (target <= "
            f"{TARGETS['latency_p95_s']} s: {'met' if met['latency_p95_s'] else 'NOT met'})"
        )
    if rs := results.get("resync"):
        print(
            f"resync writes in one period: {rs['writes']} (target 0: {'met' if rs['writes'] == 0 else 'NOT met'}) "
            f"{rs['writes_by_verb_resource'] or ''}; reads {rs['reads']} (shows the resync ran)"
        )
        if by := rs.get("reads_by_verb_resource"):
            print("resync reads: " + ", ".join(f"{k} {v}" for k, v in by.items()))
        if cpu := rs.get("cpu_s"):
            print(cpu_line("one resync period", cpu))
    if r := results.get("rss"):
        print(
            f"operator RSS at {r['stacks']} stacks: {r['rss_mib']} MiB ({r['rss_mib'] * 2**20 / 1e6:.1f} MB), "
            f"peak {r['peak_rss_mib']} MiB (target < 150 MB = {TARGETS['rss_mib']:.1f} MiB: "
            f"{'met' if r['rss_mib'] < TARGETS['rss_mib'] else 'NOT met'}); "
            f"{results['rss_mib_at_n']} MiB at {results['stacks']}  [{vs(['rss', 'rss_mib'])}]"
        )
    if "operator" not in results:
        return  # nothing worth keeping as the previous run
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    try:
        main()
    except ApiError as exc:
        raise SystemExit(f"API error: {exc.status.code} {exc.status.message}") from None
