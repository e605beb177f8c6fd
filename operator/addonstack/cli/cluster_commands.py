"""Commands that need a cluster or the operator extras: status, dev-cluster, operator run."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.live import Live
from rich.table import Table

from addonstack.cli.output import BAD_INPUT, emit_json, err, fail, out

DEFAULT_DIR = Path(os.environ.get("ADDONSTACK_DEV_DIR", ".dev-cluster"))


def _need_operator_extras() -> None:
    try:
        import kopf  # noqa: F401
        import lightkube  # noqa: F401
    except ImportError:
        fail("this command needs the operator extras: pip install 'addonstack[operator]'")


# ---- status ---------------------------------------------------------------------------------------


async def _fetch(namespace: str, name: str | None) -> list[dict[str, Any]]:
    from lightkube import AsyncClient

    from addonstack.controller.cluster import AddonStackResource

    client = AsyncClient()
    try:
        if name:
            one: Any = await client.get(AddonStackResource, name, namespace=namespace)
            return [dict(one.to_dict())]
        found: list[Any] = [o async for o in client.list(AddonStackResource, namespace=namespace)]
        return [dict(o.to_dict()) for o in found]
    finally:
        await client.close()


def _cond(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    for c in (obj.get("status") or {}).get("conditions") or []:
        if c.get("type") == type_:
            return dict(c)
    return {}


def _table(stacks: list[dict[str, Any]]) -> Table:
    table = Table(header_style="bold cyan")
    for col in ("stack", "ready", "services", "service", "phase", "replicas", "message"):
        table.add_column(col, overflow="fold")
    for s in stacks:
        st = s.get("status") or {}
        ready = _cond(s, "Ready")
        first = True
        for svc in st.get("services") or [{}]:
            table.add_row(
                s["metadata"]["name"] if first else "",
                (ready.get("status", "Unknown") if first else ""),
                (st.get("summary", "-") if first else ""),
                svc.get("id", "-"),
                svc.get("phase", "-"),
                f"{svc.get('readyReplicas', 0)}/{svc.get('replicas', 0)}" if svc else "-",
                svc.get("message", "") or (ready.get("message", "") if first else ""),
            )
            first = False
        for sk in st.get("skipped") or []:
            table.add_row("", "", "", sk["serviceId"], f"skipped: {sk['reason']}", "-", sk["details"])
    return table


@click.command()
@click.argument("name", required=False)
@click.option("--namespace", "-n", default="default", show_default=True)
@click.option("--watch", "-w", is_flag=True, help="Follow progress until every stack is Ready.")
@click.option("--timeout", type=float, default=600, show_default=True, help="Seconds to watch before giving up.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def status(name: str | None, namespace: str, watch: bool, timeout: float, as_json: bool) -> None:
    """Show AddonStack status per service (exit 1 when not Ready).

    \b
    Example:
      addonstack status demo -n tenant-a --watch
    """
    _need_operator_extras()

    def ready(stacks: list[dict[str, Any]]) -> bool:
        # Ready for the current spec: right after `kubectl apply`, the Ready=True still shown is the old one's.
        return bool(stacks) and all(
            _cond(s, "Ready").get("status") == "True"
            and (s.get("status") or {}).get("observedGeneration") == s["metadata"].get("generation")
            for s in stacks
        )

    deadline = time.monotonic() + timeout
    fetch = _retrying(namespace, name, deadline) if watch else (lambda: asyncio.run(_fetch(namespace, name)))
    try:
        stacks = fetch()
        if watch and not as_json:
            with Live(_table(stacks), console=out, refresh_per_second=2) as live:
                while not ready(stacks) and time.monotonic() < deadline:
                    time.sleep(2)
                    stacks = fetch()
                    live.update(_table(stacks))
            if not out.is_terminal:
                out.line()  # a redirected Live leaves its last table without a line end
        elif watch:
            while not ready(stacks) and time.monotonic() < deadline:
                time.sleep(2)
                stacks = fetch()
    except Exception as exc:
        fail_on_cluster_error(exc, name=name)
    if as_json:
        emit_json([{"name": s["metadata"]["name"], "status": s.get("status") or {}} for s in stacks])
    elif not watch:
        out.print(_table(stacks))
    if not ready(stacks):
        raise SystemExit(1)


def fail_on_cluster_error(exc: BaseException, *, name: str | None = None) -> NoReturn:
    """Exit 1 naming the cause and the fix; an error nobody explains is re-raised as it is."""
    from addonstack.cli.kube_errors import explain

    why = explain(exc, name=name)
    if why is None:
        raise exc
    fail(why)


def _retrying(namespace: str, name: str | None, deadline: float) -> Callable[[], list[dict[str, Any]]]:
    """``status --watch``: a fetch that rides out an API server restarting or briefly unreachable."""
    from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential

    from addonstack.cli.kube_errors import explain, transient

    def note(state: Any) -> None:
        exc = state.outcome.exception() if state.outcome else None
        why = explain(exc) if exc is not None else ""
        err.print(f"[yellow]retrying in {state.upcoming_sleep:.0f} s:[/] {why}", highlight=False)

    def fetch() -> list[dict[str, Any]]:
        retry = Retrying(
            retry=retry_if_exception(transient),
            wait=wait_exponential(multiplier=1, max=30),
            stop=stop_before_delay(max(1.0, deadline - time.monotonic())),
            before_sleep=note,
            reraise=True,
        )
        return retry(lambda: asyncio.run(_fetch(namespace, name)))

    return fetch


# ---- dev-cluster ---------------------------------------------------------------------------------


dir_option = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_DIR,
    show_default=True,
    help="Where the dev cluster keeps its state, certificates and logs.",
)


@click.group("dev-cluster")
def dev_cluster() -> None:
    """A real local control plane (etcd, kube-apiserver, controller-manager, scheduler, kwok) on loopback.

    \b
    Example:
      export KUBECONFIG=$(addonstack dev-cluster up | tail -1)
      addonstack dev-cluster status
    """


@dev_cluster.command("up")
@dir_option
def dev_up(directory: Path) -> None:
    """Start it; the last line printed is the admin kubeconfig path.

    \b
    Example:
      export KUBECONFIG=$(addonstack dev-cluster up | tail -1)
    """
    from addonstack.devcluster import DevCluster, DevClusterError, find_binaries

    try:
        cluster = DevCluster(directory.resolve(), find_binaries())
        kubeconfig = cluster.up()
    except DevClusterError as exc:
        fail(str(exc))
    err.print(f"dev cluster ready in {directory}", highlight=False)
    click.echo(str(kubeconfig))


@dev_cluster.command("down")
@dir_option
def dev_down(directory: Path) -> None:
    """Stop every process of the dev cluster by its own PID.

    \b
    Example:
      addonstack dev-cluster down
    """
    from addonstack.devcluster import DevCluster, find_binaries

    DevCluster(directory.resolve(), find_binaries()).down()
    out.print("dev cluster stopped")


@dev_cluster.command("status")
@dir_option
@click.option("--json", "as_json", is_flag=True)
def dev_status(directory: Path, as_json: bool) -> None:
    """Say which components run, on which ports.

    \b
    Example:
      addonstack dev-cluster status --json
    """
    from addonstack.devcluster import DevCluster, find_binaries

    st = DevCluster(directory.resolve(), find_binaries()).status()
    if as_json:
        emit_json(st)
        return
    out.print(st)


# ---- operator -------------------------------------------------------------------------------------


@click.group("operator")
def operator_group() -> None:
    """Run the AddonStack operator.

    \b
    Example:
      addonstack operator run --namespace tenant-a --ingress-class nginx
    """


@operator_group.command("run")
@click.option("--namespace", "-n", "namespaces", multiple=True, help="Watch only these (repeat); default all.")
@click.option("--ingress-class", help="Default ingress class for stacks that enable ingress.")
@click.option("--gpu/--no-gpu", default=None, help="Whether nodes have NVIDIA GPUs (default for stacks).")
@click.option("--database-host", help="Default PostgreSQL host of the platform.")
@click.option("--database-admin-secret", help="Default Secret (username, password) of the PostgreSQL admin.")
@click.option("--image-registry", help="Default registry mirror (host[:port][/prefix]) every image is pulled through.")
@click.option(
    "--image-pull-secret", "image_pull_secrets", multiple=True, help="Default pull Secret for every pod (repeat)."
)
@click.option("--drift-interval", type=float, help="Seconds between drift corrections (default 60).")
@click.option("--peering", help="kopf peering name: replicas with the same name never reconcile twice.")
@click.option("--dry-run", is_flag=True, help="Plan and log, but write nothing.")
@click.option("--shard-index", type=int, help="This replica's shard, 0 to --shard-count - 1 (docs/performance.md).")
@click.option("--shard-count", type=int, help="Shards that split the AddonStacks between them (default: no shards).")
@click.option("--metrics-bind-address", help="[host]:port of the Prometheus /metrics endpoint (default :8080; 0: off).")
@click.option(
    "--max-concurrent-upgrades",
    type=click.IntRange(min=1),
    help="Stacks moving to a new catalog revision at once (default 5; $ADDONSTACK_MAX_CONCURRENT_UPGRADES).",
)
@click.option(
    "--upgrade-deadline",
    type=click.FloatRange(min=10),
    help="Seconds an upgraded stack has to become Ready before it is rolled back (default 600).",
)
@click.option(
    "--catalog-dir",
    type=click.Path(file_okay=False),
    help="A provider's catalog entries merged over the built-in catalog (default: $ADDONSTACK_CATALOG_DIR).",
)
@click.option(
    "--qps", type=click.FloatRange(min=0), help="API requests per second, sustained (default 200; 0: no limit)."
)
@click.option("--burst", type=click.IntRange(min=1), help="API requests allowed at once above --qps (default 400).")
@click.option(
    "--list-chunk-size",
    type=click.IntRange(min=0),
    help="Objects per page when the operator first lists stacks and children at start (default 250; 0: unpaged).",
)
@click.option("--verbose", "-v", is_flag=True)
def operator_run(
    namespaces: tuple[str, ...],
    ingress_class: str | None,
    gpu: bool | None,
    database_host: str | None,
    database_admin_secret: str | None,
    image_registry: str | None,
    image_pull_secrets: tuple[str, ...],
    drift_interval: float | None,
    peering: str | None,
    dry_run: bool,
    shard_index: int | None,
    shard_count: int | None,
    metrics_bind_address: str | None,
    max_concurrent_upgrades: int | None,
    upgrade_deadline: float | None,
    catalog_dir: str | None,
    qps: float | None,
    burst: int | None,
    list_chunk_size: int | None,
    verbose: bool,
) -> None:
    """Run the operator (kopf) against $KUBECONFIG or the in-cluster account.

    \b
    Example:
      addonstack operator run --database-host postgres.platform.svc --database-admin-secret pg-admin
    """
    _need_operator_extras()
    from dataclasses import replace

    from addonstack.controller.run import run
    from addonstack.controller.settings import OperatorSettings
    from addonstack.controller.shards import Shard
    from addonstack.plan.images import registry_problem

    try:
        s = OperatorSettings.from_env()
        if shard_count is not None or shard_index is not None:
            s = replace(s, shard=Shard(shard_index or 0, shard_count or 1))
    except ValueError as exc:
        fail(str(exc))
    d = s.defaults
    d = replace(
        d,
        ingress_class=ingress_class or d.ingress_class,
        gpu=d.gpu if gpu is None else gpu,
        database_host=database_host or d.database_host,
        database_admin_secret=database_admin_secret or d.database_admin_secret,
        image_registry=image_registry or d.image_registry,
        image_pull_secrets=image_pull_secrets or d.image_pull_secrets,
    )
    if image_registry and (problem := registry_problem(image_registry, "--image-registry")):
        fail(problem, BAD_INPUT)
    s = replace(
        s,
        namespaces=namespaces or s.namespaces,
        defaults=d,
        drift_interval=drift_interval or s.drift_interval,
        peering=peering or s.peering,
        dry_run=dry_run or s.dry_run,
        metrics_bind_address=metrics_bind_address or s.metrics_bind_address,
        catalog_dir=catalog_dir or s.catalog_dir,
        max_concurrent_upgrades=max_concurrent_upgrades or s.max_concurrent_upgrades,
        upgrade_deadline=upgrade_deadline or s.upgrade_deadline,
        qps=s.qps if qps is None else qps,
        burst=burst or s.burst,
        list_chunk_size=s.list_chunk_size if list_chunk_size is None else list_chunk_size,
    )
    _check_catalog(s.catalog_dir)
    try:
        asyncio.run(_preflight(s.kubeconfig, s.namespaces))
    except Exception as exc:
        fail_on_cluster_error(exc)
    run(s, verbose=verbose)


def _check_catalog(catalog_dir: str | None) -> None:
    """Load (and lint) the catalog before kopf starts: a provider's bad entry stops the start, naming its file."""
    from addonstack.catalog.loader import CatalogError, load_catalog, use_catalog_dir

    use_catalog_dir(catalog_dir)
    try:
        load_catalog()
    except CatalogError as exc:
        fail(str(exc), BAD_INPUT, "catalog-dir")


async def _preflight(kubeconfig: str | None, namespaces: tuple[str, ...]) -> None:
    """One LIST of AddonStacks before kopf starts: a missing kubeconfig, an unreachable API server, a missing
    CRD or RBAC grant is reported once with its fix instead of as kopf's endless retries."""
    from lightkube import AsyncClient
    from lightkube.config.kubeconfig import KubeConfig

    from addonstack.controller.cluster import AddonStackResource

    client = AsyncClient(config=KubeConfig.from_file(kubeconfig)) if kubeconfig else AsyncClient()
    try:
        async for _ in client.list(AddonStackResource, namespace=namespaces[0] if namespaces else "*", chunk_size=1):
            break
    finally:
        await client.close()
