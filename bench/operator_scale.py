"""The operator's scale curve: ``python bench/operator.py --sizes 200,1000,2000 [--shards 2]``.

One dev cluster; stacks are added level by level (1-service stacks by default, ``--services`` to change) and at
each level the script reports:

- create->Ready p50/p95 of the level's new stacks (from a watch of the stacks) and the wall time until all are Ready;
- RSS of each operator process after one resync of everything (``/proc/<pid>/status`` VmRSS), and per stack;
- writes after a restart: every operator process is stopped and started again, and the API server's own
  ``apiserver_request_total`` counts the write requests to what the operator writes from the stop until the
  new processes have read every stack twice (resume and one drift pass); reported with the ratio to a full
  re-apply (children + one status patch per stack), whose target is at most 1 %;
- shard balance with ``--shards N``: stacks per shard (from each stack's bucket label) and max/mean.

Ratios and figures are printed, never asserted; results go to bench/results/operator-scale-last.json
(operator-scale-shards-last.json with --shards 2 or more).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from lightkube.config import client_adapter
from lightkube.config.kubeconfig import KubeConfig

sys.path.insert(0, str(Path(__file__).resolve().parent))
import operator_throughput as ot

from addonstack.constants import LABEL_SHARD_BUCKET
from addonstack.controller.cluster import AddonStackResource
from addonstack.controller.shards import Shard, bucket_of
from addonstack.devcluster import DevCluster, find_binaries, rss_mib
from addonstack.devcluster.apimetrics import operator_writes, request_counts

RESULTS = Path(__file__).resolve().parent / "results" / "operator-scale-last.json"
RESULTS_SHARDS = RESULTS.with_name("operator-scale-shards-last.json")  # runs with --shards 2 or more
UNPAGED = ("--list-chunk-size", "0")  # kopf lists each kind in one response (the operator's default pages it)


def start_all(
    kubeconfig: Path, drift: float, work: Path, shards: int, round_: int | str, flags: tuple[str, ...] = ()
) -> list[Any]:
    procs = []
    for i in range(shards):
        extra = ("--shard-index", str(i), "--shard-count", str(shards)) if shards > 1 else ()
        procs.append(ot.start_operator(kubeconfig, drift, work / f"operator-{i}-{round_}.log", (*extra, *flags)))
    deadline = time.monotonic() + 180
    logs = [work / f"operator-{i}-{round_}.log" for i in range(shards)]
    while not all("addonstack operator started" in log.read_text(errors="replace") for log in logs):
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            raise SystemExit(f"an operator did not start: see {work}")
        time.sleep(0.5)
    time.sleep(1)  # kopf's first LIST of the stacks
    return procs


def stop_all(procs: list[Any]) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(60)
        except subprocess.TimeoutExpired:  # a stop that hangs must not leave the dev cluster running
            p.kill()
            p.wait(10)


def rss_of(procs: list[Any]) -> list[float]:
    """VmRSS of each operator process, MiB (0.0 for one that is gone)."""
    return [rss_mib(p.pid) or 0.0 for p in procs]


def stack_gets(counts: Counter[tuple[str, str, str]]) -> int:
    return counts[("GET", "addonstacks", "")]


def restart_writes(
    http: Any, kubeconfig: Path, args: Any, work: Path, procs: list[Any], n: int, round_: int | str,
    flags: tuple[str, ...] = (),
) -> Any:  # fmt: skip
    """Stop, count, start, wait until every stack was read by the new processes and their timers ran, count again.

    The resume pass GETs each stack; the drift timer's passes take kopf's copy of the stack instead
    (``handlers._timer_body``), so after the resume's GETs one drift interval is waited for their pass (waiting
    for a second GET per stack, as this did before that change, ran into the timeout)."""
    stop_all(procs)
    before = request_counts(http)
    t0 = time.monotonic()
    procs = start_all(kubeconfig, args.drift_interval, work, args.shards, round_, flags)
    while time.monotonic() - t0 < args.timeout:
        now = request_counts(http)
        if stack_gets(now) - stack_gets(before) >= n:
            break
        time.sleep(2)
    time.sleep(args.drift_interval + 5)  # every stack's timer pass
    time.sleep(args.drift_interval)  # one more pass: late writes (status, repairs) would show here
    delta = request_counts(http)
    delta.subtract(before)
    return procs, operator_writes(delta), round(time.monotonic() - t0, 1)


def balance(client: Client, shards: int) -> dict[str, Any]:
    """Stacks per shard (by bucket), max/mean, and stacks still without their bucket label."""
    per: Counter[int] = Counter()
    unlabelled = 0
    for obj in client.list(AddonStackResource, namespace="*"):
        meta = obj.to_dict()["metadata"]
        labels = meta.get("labels") or {}
        unlabelled += labels.get(LABEL_SHARD_BUCKET) != str(bucket_of(meta["namespace"], meta["name"]))
        per[next(i for i in range(shards) if Shard(i, shards).owns(meta["namespace"], meta["name"]))] += 1
    counts = [per[i] for i in range(shards)]
    ratio = round(max(counts) / (sum(counts) / shards), 3)
    return {"per_shard": counts, "max_over_mean": ratio, "unlabelled": unlabelled}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200,1000,2000", help="stack counts to measure at, ascending")
    ap.add_argument("--services", default=",".join(ot.TINY), help="services of each stack")
    ap.add_argument("--shards", type=int, default=1, help="operator processes, one shard each (1: no shards)")
    ap.add_argument("--drift-interval", type=float, default=30.0)
    ap.add_argument("--timeout", type=float, default=1800.0)
    ap.add_argument("--keep", action="store_true", help="leave the work directory (operator logs) in place")
    ap.add_argument(
        "--compare-unchunked",
        action="store_true",
        help="after each level's restart, restart again with --list-chunk-size 0 and report both RSS figures",
    )
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    services = args.services.split(",")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    work = Path(tempfile.mkdtemp(prefix="addonstack-scale-"))
    cluster = DevCluster(work / "cluster", find_binaries())
    ot.log(f"starting the dev cluster in {work}")
    kubeconfig = cluster.up()
    results: dict[str, Any] = {"services": services, "shards": args.shards, "levels": []}
    procs: list[Any] = []
    try:
        config = KubeConfig.from_file(str(kubeconfig))
        client = Client(config=config, field_manager="addonstack-bench", timeout=client_adapter.httpx.Timeout(60))
        params = client_adapter.ConnectionParams(timeout=client_adapter.httpx.Timeout(60))
        http = client_adapter.Client(config.get(), params)
        ot.install_crd(client)
        ot.add_nodes(http, max(sizes) * len(services) + 500)
        objects_per_stack = len(ot.rendered("s", "ns", services))
        procs = start_all(kubeconfig, args.drift_interval, work, args.shards, 0)
        watch = ot.Availability(kubeconfig)  # Ready times from a watch, not a poll of every stack
        made = 0
        for round_, size in enumerate(sizes, start=1):
            names = [(f"op-{i:05d}", f"s{i:05d}") for i in range(made, size)]
            ot.make_namespaces(client, [ns for ns, _ in names])
            ot.log(f"level {size}: creating {len(names)} stacks of {services}")
            created: dict[Any, float] = {}
            t0 = time.monotonic()
            for ns, name in names:
                client.create(codecs.from_dict(ot.stack_body(name, ns, services)))
                created[(ns, name)] = time.monotonic()
            ot.wait_all("stacks Ready", watch.stacks_ready, set(created), args.timeout, {})
            ready = {k: watch.stack_ready_at[k] for k in created}
            made = size
            lat = [ready[k] - created[k] for k in created]
            level: dict[str, Any] = {
                "stacks": size,
                "new_stacks": len(names),
                "until_all_ready_s": round(max(ready.values()) - t0, 1),
                "latency_p50_s": round(statistics.median(lat), 2),
                "latency_p95_s": round(ot.percentile(lat, 0.95), 2),
            }
            time.sleep(args.drift_interval + 5)  # one resync of everything before RSS is read
            rss = rss_of(procs)
            level["rss_mib"] = rss
            level["rss_kib_per_stack"] = round(sum(rss) * 1024 / size, 1)
            procs, writes, took = restart_writes(http, kubeconfig, args, work, procs, size, round_)
            full = size * (objects_per_stack + 1)
            level["restart"] = {"writes": sum(writes.values()), "by": writes, "full_reapply": full,
                                "ratio": round(sum(writes.values()) / full, 4), "window_s": took}  # fmt: skip
            level["rss_after_restart_mib"] = rss_of(procs)
            if args.compare_unchunked:  # the same restart once more, with kopf's unpaged first LIST of each kind
                procs, writes, _ = restart_writes(http, kubeconfig, args, work, procs, size, f"{round_}u", UNPAGED)
                level["unpaged_restart"] = {"writes": sum(writes.values()), "rss_mib": rss_of(procs)}
            if args.shards > 1:
                level["balance"] = balance(client, args.shards)
            results["levels"].append(level)
            ot.log(f"level {size}: {json.dumps(level)}")
    finally:
        try:
            if procs:
                stop_all(procs)
        finally:
            cluster.down()
            if not args.keep:
                shutil.rmtree(work, ignore_errors=True)
        report(results)


def report(results: dict[str, Any]) -> None:
    print()
    print(f"services per stack: {results['services']}, shards: {results['shards']}")
    print("stacks | all Ready s | create->Ready p50 / p95 s | RSS MiB (KiB/stack) | restart writes (ratio) | balance")
    for lv in results["levels"]:
        rs = lv["restart"]
        bal = lv.get("balance", {}).get("max_over_mean", "-")
        print(
            f"{lv['stacks']:>6} | {lv['until_all_ready_s']:>11} | {lv['latency_p50_s']} / {lv['latency_p95_s']} | "
            f"{sum(lv['rss_mib']):.1f} ({lv['rss_kib_per_stack']}) | {rs['writes']} of {rs['full_reapply']} "
            f"({rs['ratio'] * 100:.2f} %, target <= 1 %) | {bal}"
        )
        if unpaged := lv.get("unpaged_restart"):
            paged, whole = sum(lv["rss_after_restart_mib"]), sum(unpaged["rss_mib"])
            print(f"{'':>6}   RSS after a restart: paged listing {paged:.1f} MiB, unpaged {whole:.1f} MiB "
                  f"(paged/unpaged {paged / whole:.3f}; writes {unpaged['writes']})")  # fmt: skip
    if results["levels"]:
        out = RESULTS_SHARDS if results["shards"] > 1 else RESULTS
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
