"""Which Kubernetes client the operator uses: lightkube's AsyncClient or the `kubernetes` package, measured.

Run: ``python bench/clients.py [--stacks 40] [--workers 20]`` (needs ``pip install -e '.[bench]'`` for the
`kubernetes` package, and ``make k8s``). It starts its own DevCluster and server-side applies the same
objects (N AddonStacks' children, rendered offline by the library) with each client, each in its own
process and its own namespaces:

- lightkube: ``AsyncClient.apply(obj, field_manager=..., force=True)``, stacks concurrently (a semaphore
  of --workers), objects of a stack in order: what the operator does;
- lightkube-aiohttp: the same, over the operator's aiohttp transport (``controller/transport.py``), which is
  how the operator sends its requests since the eleventh session; lightkube builds the requests, aiohttp
  carries them;
- kubernetes: the official client's ``DynamicClient.server_side_apply`` (PATCH with content type
  application/apply-patch+yaml) from a pool of --workers threads, the usual way to get concurrency from
  this synchronous client (it is what kopf-based operators that use it do).

Each applies twice: the first pass creates, the second is a no-op re-apply (the steady state of a
level-based reconciler). Printed: objects/s for each pass, the client process's CPU milliseconds per object
over both passes (on two shared cores the API server and the client compete for the same CPU, so this is
what a client costs the burst), the process's peak RSS, and the time to import the client and build it
from a kubeconfig (median of 5 fresh interpreters); then the ratios. Results go to
bench/results/clients-last.json. The machine is shared, so only ratios within one run mean much.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

RESULTS = Path(__file__).resolve().parent / "results" / "clients-last.json"
SERVICES = ["it-tools", "dozzle", "excalidraw", "gatus", "gotify"]
FIELD_MANAGER = "addonstack-bench"
CLIENTS = ["lightkube", "lightkube-aiohttp", "kubernetes"]

IMPORT_SNIPPETS = {
    "lightkube": (
        "from lightkube import AsyncClient; from lightkube.config.kubeconfig import KubeConfig; "
        "AsyncClient(config=KubeConfig.from_file({kc!r}))"
    ),
    "lightkube-aiohttp": "from addonstack.controller.transport import kube_client; kube_client({kc!r})",
    "kubernetes": (
        "from kubernetes import config, dynamic; "
        "dynamic.DynamicClient(config.new_client_from_config(config_file={kc!r}))"
    ),
}


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


# ---- workers (run in their own process) -----------------------------------------------------------


def work_lightkube(
    kubeconfig: str, stacks: list[list[dict[str, Any]]], workers: int, aiohttp: bool = False
) -> list[float]:
    import asyncio

    from lightkube import AsyncClient, codecs
    from lightkube.config.kubeconfig import KubeConfig

    async def run() -> list[float]:
        if aiohttp:  # imported only here: it brings the addonstack package, which plain lightkube is measured without
            from addonstack.controller.transport import kube_client

            client = kube_client(kubeconfig, field_manager=FIELD_MANAGER)
        else:
            client = AsyncClient(config=KubeConfig.from_file(kubeconfig), field_manager=FIELD_MANAGER)
        sem = asyncio.Semaphore(workers)

        async def one(objs: list[dict[str, Any]]) -> None:
            async with sem:
                for obj in objs:
                    await client.apply(codecs.from_dict(obj), force=True)

        passes = []
        for _ in range(2):
            t0 = time.monotonic()
            await asyncio.gather(*(one(s) for s in stacks))
            passes.append(time.monotonic() - t0)
        await client.close()
        return passes

    return asyncio.run(run())


def work_kubernetes(kubeconfig: str, stacks: list[list[dict[str, Any]]], workers: int) -> list[float]:
    from concurrent.futures import ThreadPoolExecutor

    from kubernetes import client as k8s_client
    from kubernetes import config, dynamic

    conf = k8s_client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    conf.connection_pool_maxsize = workers  # one connection per thread, like lightkube's pool
    dyn = dynamic.DynamicClient(k8s_client.ApiClient(conf))
    kinds = {(o["apiVersion"], o["kind"]) for s in stacks for o in s}
    resources = {k: dyn.resources.get(api_version=k[0], kind=k[1]) for k in kinds}  # discovery, once

    def one(objs: list[dict[str, Any]]) -> None:
        for obj in objs:
            resources[(obj["apiVersion"], obj["kind"])].server_side_apply(
                body=obj, field_manager=FIELD_MANAGER, force_conflicts=True
            )

    passes = []
    with ThreadPoolExecutor(workers) as pool:
        for _ in range(2):
            t0 = time.monotonic()
            list(pool.map(one, stacks))
            passes.append(time.monotonic() - t0)
    return passes


# ---- driver ---------------------------------------------------------------------------------------


def worker_main(args: argparse.Namespace) -> None:
    stacks = json.loads(Path(args.objects).read_text())
    if args.worker == "lightkube-aiohttp":  # imported before the CPU count starts: import time is measured apart
        import addonstack.controller.transport  # noqa: F401
    cpu0 = time.process_time()
    if args.worker == "kubernetes":
        passes = work_kubernetes(args.kubeconfig, stacks, args.workers)
    else:
        passes = work_lightkube(args.kubeconfig, stacks, args.workers, aiohttp=args.worker == "lightkube-aiohttp")
    cpu = time.process_time() - cpu0
    n = sum(len(s) for s in stacks)
    print(
        json.dumps(
            {
                "objects": n,
                "create_s": round(passes[0], 2),
                "reapply_s": round(passes[1], 2),
                "create_per_s": round(n / passes[0], 1),
                "reapply_per_s": round(n / passes[1], 1),
                "cpu_ms_per_object": round(1000 * cpu / (2 * n), 2),
                "peak_rss_mb": round(peak_rss_mib(), 1),
            }
        )
    )


def import_seconds(name: str, kubeconfig: str, runs: int = 5) -> float:
    snippet = IMPORT_SNIPPETS[name].format(kc=kubeconfig)
    code = f"import time; t=time.perf_counter(); {snippet}; print(time.perf_counter()-t)"
    times = [float(subprocess.check_output([sys.executable, "-c", code], text=True)) for _ in range(runs)]
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--stacks", type=int, default=40, help="stacks of 5 services whose children are applied")
    ap.add_argument("--workers", type=int, default=20)
    ap.add_argument("--worker", choices=CLIENTS, help=argparse.SUPPRESS)
    ap.add_argument("--kubeconfig", help=argparse.SUPPRESS)
    ap.add_argument("--objects", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker_main(args)
        return
    try:
        import kubernetes  # noqa: F401
    except ImportError:
        raise SystemExit("the `kubernetes` package is not installed: pip install -e '.[bench]'") from None

    from lightkube import Client
    from lightkube.config.kubeconfig import KubeConfig
    from lightkube.models.meta_v1 import ObjectMeta
    from lightkube.resources.core_v1 import Namespace

    from addonstack.catalog.loader import load_catalog
    from addonstack.controller.reconcile import APPLY_ORDER
    from addonstack.devcluster import DevCluster, find_binaries, missing_binaries
    from addonstack.plan.secrets import make_rng
    from addonstack.plan.spec import AddonStackSpec
    from addonstack.render.kubernetes import render_kubernetes
    from addonstack.render.stack import StackDefaults, plan_stack

    bin_dir = find_binaries()
    if missing := missing_binaries(bin_dir):
        raise SystemExit(f"missing Kubernetes binaries in {bin_dir}: {', '.join(missing)}; run `make k8s`")
    cat = load_catalog()
    defaults = StackDefaults(database_host="postgres.platform.example", database_admin_secret="pg-admin")

    def rendered(ns: str) -> list[dict[str, Any]]:
        planned = plan_stack(cat, AddonStackSpec(services=SERVICES), "s", ns, defaults, make_rng(None))
        plan, ctx = planned.plan, planned.context
        objs, _ = render_kubernetes(plan, ctx)
        return sorted(objs, key=lambda o: APPLY_ORDER.index(o["kind"]))

    results: dict[str, Any] = {"stacks": args.stacks, "workers": args.workers}
    with tempfile.TemporaryDirectory(prefix="addonstack-clients-") as tmp:
        cluster = DevCluster(Path(tmp) / "cluster", bin_dir)
        kubeconfig = str(cluster.up())
        try:
            admin = Client(config=KubeConfig.from_file(kubeconfig), field_manager=FIELD_MANAGER)
            for name in CLIENTS:
                namespaces = [f"{name[:4]}{name[-3:]}-{i:04d}" for i in range(args.stacks)]
                for ns in namespaces:
                    admin.create(Namespace(metadata=ObjectMeta(name=ns)))
                objects = Path(tmp) / f"{name}.json"
                objects.write_text(json.dumps([rendered(ns) for ns in namespaces]))
                out = subprocess.check_output(
                    [sys.executable, __file__, "--worker", name, "--kubeconfig", kubeconfig,
                     "--objects", str(objects), "--workers", str(args.workers)],
                    text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"},
                )  # fmt: skip
                results[name] = json.loads(out.strip().splitlines()[-1])
                results[name]["import_and_client_s"] = round(import_seconds(name, kubeconfig), 3)
        finally:
            cluster.down()
    report(results)


def report(results: dict[str, Any]) -> None:
    previous = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    lk, k8, aio = results["lightkube"], results["kubernetes"], results["lightkube-aiohttp"]
    print(f"{results['stacks']} stacks, {lk['objects']} objects, {results['workers']} concurrent workers")
    print(f"{'':<19}{'create/s':>10}{'re-apply/s':>12}{'CPU ms/object':>15}{'peak RSS MiB':>14}{'import+client s':>17}")
    for name in CLIENTS:
        r = results[name]
        print(
            f"{name:<19}{r['create_per_s']:>10}{r['reapply_per_s']:>12}{r['cpu_ms_per_object']:>15}"
            f"{r['peak_rss_mb']:>14}{r['import_and_client_s']:>17}"
        )
    ratios = {
        "cpu_ms_per_object": lk["cpu_ms_per_object"] / k8["cpu_ms_per_object"],
        "create_per_s": lk["create_per_s"] / k8["create_per_s"],
        "reapply_per_s": lk["reapply_per_s"] / k8["reapply_per_s"],
        "peak_rss_mb": lk["peak_rss_mb"] / k8["peak_rss_mb"],
        "import_and_client_s": lk["import_and_client_s"] / k8["import_and_client_s"],
    }
    results["ratio_lightkube_over_kubernetes"] = {k: round(v, 2) for k, v in ratios.items()}
    prev = previous.get("ratio_lightkube_over_kubernetes", {})
    print("lightkube / kubernetes: " + ", ".join(
        f"{k} {v:.2f}" + (f" (previous run {prev[k]:.2f})" if k in prev else "") for k, v in ratios.items()
    ))  # fmt: skip
    transport = {k: aio[k] / lk[k] for k in ("cpu_ms_per_object", "create_per_s", "reapply_per_s", "peak_rss_mb")}
    results["ratio_aiohttp_transport_over_httpx"] = {k: round(v, 2) for k, v in transport.items()}
    prev = previous.get("ratio_aiohttp_transport_over_httpx", {})
    print("lightkube over aiohttp / over httpx (the operator's transport): " + ", ".join(
        f"{k} {v:.2f}" + (f" (previous run {prev[k]:.2f})" if k in prev else "") for k, v in transport.items()
    ))  # fmt: skip
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
