"""Operator settings, from command-line flags or ADDONSTACK_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from addonstack.constants import BACKUP_AGENT_IMAGE
from addonstack.controller.shards import Shard
from addonstack.plan.images import registry_problem
from addonstack.render.stack import StackDefaults


def _env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    return default if raw is None else raw.strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str) -> int | None:
    raw = (os.environ.get(name) or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r} is not an integer; set a whole number or unset it") from None


@dataclass(frozen=True)
class WebhookSettings:
    """kopf's webhook server for the validating admission webhook (``ADDONSTACK_WEBHOOK_*``).

    kopf creates and keeps the ValidatingWebhookConfiguration ``config_name`` with a URL client config
    ``https://<host>:<port>``. Give ``certfile``/``pkeyfile`` (e.g. from cert-manager) and ``cafile``: without
    them kopf makes a self-signed certificate with ``certbuilder``, whose ``oscrypto`` 1.3.0 cannot load
    OpenSSL 3.0.10 and later, so it is not a dependency. The tests issue a certificate with the dev PKI.
    """

    addr: str = "0.0.0.0"
    host: str | None = None  # the name the API server uses to reach the webhook; default: addr
    port: int = 9443
    certfile: str | None = None
    pkeyfile: str | None = None
    cafile: str | None = None  # CA bundle for the API server; default: the certificate itself
    config_name: str = "addonstack.dev"

    @classmethod
    def from_env(cls) -> WebhookSettings | None:
        if not _env_bool("ADDONSTACK_WEBHOOK", False):
            return None
        env = os.environ.get
        return cls(
            addr=env("ADDONSTACK_WEBHOOK_ADDR") or cls.addr,
            host=env("ADDONSTACK_WEBHOOK_HOST") or None,
            port=_env_int("ADDONSTACK_WEBHOOK_PORT") or cls.port,
            certfile=env("ADDONSTACK_WEBHOOK_CERTFILE") or None,
            pkeyfile=env("ADDONSTACK_WEBHOOK_PKEYFILE") or None,
            cafile=env("ADDONSTACK_WEBHOOK_CAFILE") or None,
            config_name=env("ADDONSTACK_WEBHOOK_CONFIG") or cls.config_name,
        )


@dataclass(frozen=True)
class OperatorSettings:
    namespaces: tuple[str, ...] = ()  # empty: every namespace (cluster-wide)
    defaults: StackDefaults = field(default_factory=StackDefaults)
    drift_interval: float = 60.0
    dry_run: bool = False
    peering: str | None = None  # kopf peering name for HA; None runs standalone
    priority: int | None = None  # peering priority; None: a random one per process (see controller/run.py)
    health_port: int | None = 8081  # kopf's /healthz (0 or None: off)
    metrics_bind_address: str | None = None  # "[host]:port" of /metrics; `operator run` defaults to ":8080"
    health_host: str = "0.0.0.0"
    kubeconfig: str | None = None
    max_workers: int = 20
    qps: float = 200.0  # client-side limit of API requests per second (0: none); like client-go's --kube-api-qps
    burst: int = 400  # requests allowed at once above qps before the limit applies
    list_chunk_size: int = 250  # objects per page of every watch's first LIST at start (0: one unpaged LIST)
    webhook: WebhookSettings | None = None  # None: no admission webhook (the CRD still validates)
    catalog_dir: str | None = None  # a provider's catalog entries merged over the built-in catalog
    max_concurrent_upgrades: int = 5  # stacks moving to a new catalog revision at once (controller/upgrade.py)
    upgrade_deadline: float = 600.0  # seconds an upgraded stack has to become Ready before it is rolled back
    shard: Shard | None = None  # None: every stack (no bucket labels, no shard Lease)
    lease_namespace: str = "default"  # where the shard Leases live (the operator's own namespace in a cluster)

    @property
    def peering_name(self) -> str | None:
        """Replicas of one shard peer among themselves; other shards run beside them."""
        if self.peering and self.shard is not None:
            return f"{self.peering}-{self.shard.index}"
        return self.peering

    @classmethod
    def from_env(cls) -> OperatorSettings:
        ns = tuple(n for n in os.environ.get("ADDONSTACK_NAMESPACES", "").split(",") if n.strip())
        defaults = StackDefaults(
            gpu=_env_bool("ADDONSTACK_GPU", False),
            ingress_enabled=_env_bool("ADDONSTACK_INGRESS", False),
            ingress_class=os.environ.get("ADDONSTACK_INGRESS_CLASS") or None,
            database_host=os.environ.get("ADDONSTACK_DATABASE_HOST") or None,
            database_admin_secret=os.environ.get("ADDONSTACK_DATABASE_ADMIN_SECRET") or None,
            deletion_policy=os.environ.get("ADDONSTACK_DELETION_POLICY", "Retain"),
            image_registry=os.environ.get("ADDONSTACK_IMAGE_REGISTRY") or None,
            image_pull_secrets=tuple(
                n.strip() for n in os.environ.get("ADDONSTACK_IMAGE_PULL_SECRETS", "").split(",") if n.strip()
            ),
            backup_image=os.environ.get("ADDONSTACK_BACKUP_IMAGE") or BACKUP_AGENT_IMAGE,
        )
        if defaults.image_registry and (problem := registry_problem(defaults.image_registry)):
            raise ValueError(problem.replace("imageRegistry", "ADDONSTACK_IMAGE_REGISTRY", 1))
        chunk = _env_int("ADDONSTACK_LIST_CHUNK_SIZE")
        if chunk is not None and chunk < 0:
            raise ValueError(f"ADDONSTACK_LIST_CHUNK_SIZE={chunk} is negative; set 0 (unpaged) or a page size")
        return cls(
            namespaces=ns,
            defaults=defaults,
            drift_interval=float(os.environ.get("ADDONSTACK_DRIFT_INTERVAL", "60")),
            dry_run=_env_bool("ADDONSTACK_DRY_RUN", False),
            peering=os.environ.get("ADDONSTACK_PEERING") or None,
            kubeconfig=os.environ.get("KUBECONFIG") or None,
            health_host=os.environ.get("ADDONSTACK_HEALTH_HOST", "0.0.0.0"),
            health_port=_health_port(),
            metrics_bind_address=os.environ.get("ADDONSTACK_METRICS_BIND_ADDRESS", ":8080"),
            priority=_env_int("ADDONSTACK_PEERING_PRIORITY"),
            webhook=WebhookSettings.from_env(),
            qps=float(os.environ.get("ADDONSTACK_QPS") or cls.qps),
            burst=_env_int("ADDONSTACK_BURST") or cls.burst,
            list_chunk_size=cls.list_chunk_size if chunk is None else chunk,
            shard=_shard(),
            lease_namespace=os.environ.get("POD_NAMESPACE") or (ns[0] if ns else "default"),
            catalog_dir=os.environ.get("ADDONSTACK_CATALOG_DIR") or None,
            max_concurrent_upgrades=_env_int("ADDONSTACK_MAX_CONCURRENT_UPGRADES") or 5,
            upgrade_deadline=float(os.environ.get("ADDONSTACK_UPGRADE_DEADLINE") or 600),
        )


def _shard() -> Shard | None:
    """ADDONSTACK_SHARD_INDEX / ADDONSTACK_SHARD_COUNT (both or neither)."""
    index, count = _env_int("ADDONSTACK_SHARD_INDEX"), _env_int("ADDONSTACK_SHARD_COUNT")
    if count is None:
        return None
    return Shard(index or 0, count)


def _health_port() -> int | None:
    """ADDONSTACK_HEALTH_PORT: kopf's /healthz port (default 8081; 8080 serves /metrics); 0 turns it off."""
    port = _env_int("ADDONSTACK_HEALTH_PORT")
    if port is None:
        return 8081
    return port or None
