"""The ``AddonStack`` custom resource: spec and status models.

The CRD's OpenAPI schema is generated from these classes (``addonstack.render.crd``), so the API
server, the CLI's offline ``validate`` and the operator check one definition. Fields users write
carry no defaults: the operator applies them and reports the effective values in ``status.effective``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from addonstack.plan.models import Id, OverrideKey, PlatformName
from addonstack.reasons import ServicePhase, SkipReason

K8sName = Annotated[
    str, Field(pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$", max_length=253)
]
SecretKey = Annotated[str, Field(pattern=r"^[-._a-zA-Z0-9]+$", max_length=253)]
Quantity = Annotated[str, Field(pattern=r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$", max_length=32)]
Port = Annotated[int, Field(ge=1, le=65535)]
# Kubernetes label syntax ([.] rather than an escaped dot: the pattern also becomes a CEL string).
LabelKey = Annotated[
    str,
    Field(
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?([.][a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$",
        max_length=317,
    ),
]
LabelValue = Annotated[str, Field(pattern=r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$", max_length=63)]
# The stack's name prefixes child names such as <name>-db-setup-<hash> (a Job name is also a label value).
MAX_STACK_NAME = 40


class SpecModel(BaseModel):
    # Enum fields hold their plain string values, so a dump goes to YAML and JSON alike.
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", use_enum_values=True)


class SecretRef(SpecModel):
    name: K8sName


class SecretKeyRef(SpecModel):
    name: K8sName
    key: SecretKey


class ResourceList(SpecModel):
    cpu: Quantity | None = None
    memory: Quantity | None = None


class Resources(SpecModel):
    requests: ResourceList | None = None
    limits: ResourceList | None = None


class EnvFromSource(SpecModel):
    secret_ref: SecretRef


class ServiceOverride(SpecModel):
    """Per-service changes to the catalog defaults."""

    image_tag: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")] | None = None
    replicas: Annotated[int, Field(ge=0, le=20)] | None = Field(
        default=None, description="Only for services the catalog marks scalable; 0 pauses the service."
    )
    resources: Resources | None = None
    storage_size: Quantity | None = Field(default=None, description="Size of each of the service's volumes.")
    env: dict[OverrideKey, Annotated[str, Field(max_length=32768)]] | None = Field(
        default=None,
        description="Environment variables set after every catalog and generated value (plain text: put "
        "secrets in a Secret and use envFrom).",
    )
    env_from: Annotated[list[EnvFromSource], Field(max_length=20)] | None = Field(
        default=None,
        description="Secrets whose keys become variables; catalog variables of the same name take precedence.",
    )


class Ingress(SpecModel):
    enabled: bool | None = Field(default=None, description="Create Ingress objects (default: true when set).")
    class_name: K8sName | None = Field(default=None, description="IngressClass; nginx and traefik strip prefixes.")
    host: (
        Annotated[
            str,
            Field(
                pattern=r"^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
                max_length=253,
            ),
        ]
        | None
    ) = None
    tls_secret_name: K8sName | None = Field(
        default=None, description="TLS Secret for the hosts (cert-manager fills it when an issuer is set)."
    )
    cluster_issuer: K8sName | None = Field(
        default=None, description="cert-manager ClusterIssuer that issues the certificate for every host."
    )
    issuer: K8sName | None = Field(
        default=None, description="cert-manager Issuer in the stack's namespace (instead of clusterIssuer)."
    )
    path_prefix: Annotated[str, Field(pattern=r"^/[a-z0-9/_-]*$", max_length=100)] | None = None
    per_service_hosts: bool | None = Field(
        default=None, description="Route <service>.<host> per service instead of <host>/<service>."
    )


@dataclass(frozen=True)
class IngressRule:
    """A combination of ``spec.ingress`` fields that cannot work. One rule set: the CRD gets ``cel`` (the API
    server refuses), ``addonstack validate`` and the webhook evaluate ``broken``; both say ``message``."""

    cel: str
    message: str
    broken: Callable[[Ingress], bool]


INGRESS_RULES: tuple[IngressRule, ...] = (
    IngressRule(
        "!has(self.tlsSecretName) || has(self.host)",
        "ingress.tlsSecretName needs ingress.host: TLS certificates are issued per host",
        lambda i: i.tls_secret_name is not None and i.host is None,
    ),
    IngressRule(
        "!has(self.perServiceHosts) || !self.perServiceHosts || has(self.host)",
        "ingress.perServiceHosts needs ingress.host (services get <service>.<host>)",
        lambda i: bool(i.per_service_hosts) and i.host is None,
    ),
    IngressRule(
        "(!has(self.clusterIssuer) && !has(self.issuer)) || has(self.host)",
        "ingress.clusterIssuer and ingress.issuer need ingress.host: certificates are issued per host",
        lambda i: (i.cluster_issuer is not None or i.issuer is not None) and i.host is None,
    ),
    IngressRule(
        "!has(self.clusterIssuer) || !has(self.issuer)",
        "give ingress.clusterIssuer (cluster-wide) or ingress.issuer (this namespace), not both",
        lambda i: i.cluster_issuer is not None and i.issuer is not None,
    ),
)


class Database(SpecModel):
    """The platform's PostgreSQL server; ``postgresql`` resolves to it inside the namespace."""

    host: Annotated[str, Field(min_length=1, max_length=253)] | None = Field(
        default=None, description="DNS name or IP of the server."
    )
    port: Port | None = Field(default=None, description="Port of the server (default 5432).")
    admin_secret_ref: SecretRef | None = Field(
        default=None, description="Secret with keys username and password of an admin role."
    )


class Redis(SpecModel):
    host: Annotated[str, Field(min_length=1, max_length=253)] | None = None
    port: Port | None = None
    password_secret_ref: SecretKeyRef | None = None


class PeerSelector(SpecModel):
    """Pods allowed to reach the stack's services."""

    namespace: K8sName | None = Field(default=None, description="Namespace of the peers.")
    pod_labels: dict[LabelKey, LabelValue] | None = Field(default=None, description="Labels of the peer pods.")


class NetworkPolicySpec(SpecModel):
    enabled: bool | None = Field(default=None, description="Create NetworkPolicies (default true).")
    ingress_controller: PeerSelector | None = Field(default=None, description="Where the ingress controller runs.")
    gateway: PeerSelector | None = Field(default=None, description="Where the OpenClaw gateway runs.")


Weekday = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
ClockTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


class MaintenanceWindow(SpecModel):
    """When an Automatic stack may move to a new catalog revision (UTC; end before start spans midnight)."""

    days: Annotated[list[Weekday], Field(max_length=7)] | None = Field(default=None, description="Default: every day.")
    start: ClockTime = Field(description="HH:MM, UTC.")
    end: ClockTime = Field(description="HH:MM, UTC.")


class S3Target(SpecModel):
    """An S3-compatible bucket (AWS S3, MinIO, SeaweedFS, Ceph RGW, versitygw...), addressed path-style."""

    endpoint: Annotated[str, Field(pattern=r"^https?://[^\s/]+(/[^\s]*)?$", max_length=512)] = Field(
        description="URL of the S3 API, e.g. https://s3.eu-central-1.amazonaws.com or http://minio.backup:9000."
    )
    bucket: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")] = Field(
        description="Bucket; it must exist."
    )
    region: Annotated[str, Field(pattern=r"^[a-z0-9-]{1,32}$")] | None = Field(
        default=None, description="Signing region (default us-east-1)."
    )
    prefix: Annotated[str, Field(pattern=r"^[A-Za-z0-9._/-]{0,200}$")] | None = Field(
        default=None, description="Key prefix; backups go under <prefix>/<namespace>/<stack>/<backupId>/."
    )
    secret_ref: SecretRef = Field(description="Secret with keys AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.")


class BackupTarget(SpecModel):
    s3: S3Target


class BackupSpec(SpecModel):
    """Scheduled backups of the stack's databases, volumes and the secrets their data needs."""

    schedule: Annotated[str, Field(pattern=r"^(@(hourly|daily|weekly|monthly|yearly)|(\S+\s+){4}\S+)$")] | None = Field(
        default=None, description="Cron schedule of the stack's CronJob (UTC); none: one-shot backups only."
    )
    retention: Annotated[int, Field(ge=1, le=1000)] | None = Field(
        default=None, description="Scheduled backups kept (default 7); older ones are deleted from the bucket."
    )
    target: BackupTarget = Field(description="Where backups are stored.")
    encryption_key_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with key 'key' (16+ random bytes) that seals the secret values the data needs; "
        "without it a backup only names those Secrets.",
    )
    suspend: bool | None = Field(default=None, description="Pause the schedule (the CronJob stays).")


class AddonStackSpec(SpecModel):
    services: Annotated[list[Id], Field(max_length=250)] = Field(
        description="Catalog ids to deploy; dependencies are added, platform infrastructure is skipped."
    )
    skill_packs: Annotated[list[Id], Field(max_length=50)] | None = Field(
        default=None, description="Skill packs: each adds its required services and its agent skills."
    )
    credentials_secret_ref: SecretRef | None = Field(
        default=None,
        description="Secret with user credentials: key '<serviceId>.<ENV_KEY>', or '<ENV_KEY>' for every "
        "service that has that variable.",
    )
    prebuilt_images: dict[Id, Annotated[str, Field(min_length=1, max_length=512)]] | None = Field(
        default=None, description="Image per service id, for services without a published image or a mirror."
    )
    overrides: dict[Id, ServiceOverride] | None = Field(
        default=None, description="Per-service image tag, replicas, resources and volume size."
    )
    ingress: Ingress | None = Field(default=None, description="HTTP routes for services with a web UI or API.")
    gpu: bool | None = Field(
        default=None, description="Nodes have NVIDIA GPUs: GPU-only services run and get nvidia.com/gpu."
    )
    allow_experimental: bool | None = Field(
        default=None, description="Deploy experimental catalog entries (skipped by default)."
    )
    platform: PlatformName | None = Field(
        default=None, description="Node architecture; services without an image for it are skipped."
    )
    database: Database | None = Field(default=None, description="The platform's PostgreSQL server.")
    redis: Redis | None = Field(default=None, description="The platform's Redis server.")
    network_policy: NetworkPolicySpec | None = Field(
        default=None,
        description="Deny-by-default ingress, allowing dependencies, the ingress controller, the gateway.",
    )
    deletion_policy: Literal["Retain", "Delete"] | None = Field(
        default=None, description="What happens to volumes, Secrets and databases when the stack goes."
    )
    upgrade_policy: Literal["Manual", "Automatic"] | None = Field(
        default=None,
        description="Manual (default): a new catalog changes no running image until approvedRevision names it; "
        "Automatic: the stack moves to it (inside maintenanceWindow when set).",
    )
    approved_revision: Annotated[str, Field(pattern=r"^[0-9A-Za-z.+-]{1,64}$")] | None = Field(
        default=None, description="The catalog revision to move to (status.availableRevision)."
    )
    maintenance_window: MaintenanceWindow | None = Field(
        default=None, description="When Automatic upgrades may happen (UTC)."
    )
    size: Literal["small", "medium", "large"] | None = Field(
        default=None,
        description="Resource preset scaling the catalog's figures (medium): small halves the requests and keeps "
        "the limits, large doubles both; overrides.<id>.resources win.",
    )
    image_registry: Annotated[str, Field(min_length=1, max_length=255)] | None = Field(
        default=None,
        description="Registry mirror (host[:port][/prefix]) every image is pulled through: redis:7 becomes "
        "<mirror>/library/redis:7, ghcr.io/a/b:1 becomes <mirror>/ghcr.io/a/b:1 (default: the operator's "
        "--image-registry).",
    )
    image_pull_secrets: Annotated[list[SecretRef], Field(max_length=20)] | None = Field(
        default=None,
        description="Secrets (kubernetes.io/dockerconfigjson) every pod pulls its images with; replaces the "
        "operator's --image-pull-secret when given.",
    )
    backup: BackupSpec | None = Field(default=None, description="Scheduled backups and their storage.")


# ---- status ------------------------------------------------------------------------------------


class Condition(SpecModel):
    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str
    message: str
    last_transition_time: str
    observed_generation: int | None = None


class ServiceStatus(SpecModel):
    id: str
    phase: ServicePhase
    ready_replicas: int = 0
    replicas: int = 0
    image: str
    message: str = ""
    reason: str | None = Field(
        default=None, description="Why the service is where it is: a condition reason (docs/troubleshooting.md)."
    )


class SkippedStatus(SpecModel):
    service_id: str
    reason: SkipReason
    details: str
    required_credentials: list[str] | None = None


class RouteStatus(SpecModel):
    service_id: str
    protocol: str
    port: int
    path: str | None = None
    url: str | None = None


class Effective(SpecModel):
    platform: str
    gpu: bool
    deletion_policy: str
    ingress_class_name: str | None = None
    database_host: str | None = None
    network_policy: bool
    image_registry: str | None = None
    size: str | None = None


class StackResources(SpecModel):
    """What the stack's pods and claims ask of the namespace, as its ResourceQuota counts them."""

    requests: dict[str, str] = Field(default_factory=dict, description="cpu and memory, all pods together.")
    limits: dict[str, str] = Field(default_factory=dict, description="cpu and memory limits, all pods together.")
    pods: int = 0
    storage: str | None = Field(default=None, description="Storage the stack's volume claims request.")


class AvailableUpgrade(SpecModel):
    service: str
    from_: str = Field(alias="from")
    to: str


class UpgradeRecord(SpecModel):
    """The last move to a new catalog revision: Rolling until the stack is Ready, RolledBack past the deadline."""

    phase: Literal["Rolling", "RolledBack"]
    revision: str
    from_revision: str
    previous_images: dict[str, str] = Field(default_factory=dict)
    started_at: str
    generation: int = Field(default=0, description="The spec generation that started it (a newer one retries).")
    message: str = ""


class BackupStatus(SpecModel):
    """The stack's newest backups, kept by the operator across reconciles."""

    last_backup: str | None = Field(default=None, description="Id of the newest successful backup.")
    last_success_time: str | None = None
    last_size_bytes: int | None = None
    last_failure_time: str | None = None
    last_failure: str | None = Field(default=None, description="Why the newest failed backup failed.")
    location: str | None = Field(default=None, description="s3://bucket/prefix of the stack's backups.")


class AddonStackStatus(SpecModel):
    observed_generation: int | None = None
    conditions: list[Condition] = Field(default_factory=list)
    summary: str | None = Field(default=None, description="Ready/total services, e.g. 2/3.")
    skipped_count: int | None = None
    services: list[ServiceStatus] = Field(default_factory=list)
    skipped: list[SkippedStatus] = Field(default_factory=list)
    routes: list[RouteStatus] = Field(default_factory=list)
    warnings: list[str] = Field(default_factory=list)
    effective: Effective | None = None
    resources: StackResources | None = Field(
        default=None, description="The stack's total requests and limits (with the namespace's LimitRange defaults)."
    )
    generated_secret_keys: list[str] = Field(
        default_factory=list, description="Names (never values) of keys the operator generated."
    )
    catalog_revision: str | None = Field(
        default=None, description="The catalog revision (package version and content digest) the images come from."
    )
    images: dict[str, str] | None = Field(
        default=None, description="Catalog image each service runs; Manual stacks keep these until approval."
    )
    available_revision: str | None = Field(
        default=None, description="The operator's catalog revision, when it would change this stack's images."
    )
    available_upgrades: list[AvailableUpgrade] = Field(
        default_factory=list, description="Each service whose image the available revision changes."
    )
    upgrade: UpgradeRecord | None = Field(default=None, description="An upgrade rolling out, or rolled back.")
    applied: dict[str, str] | None = Field(
        default=None,
        description=(
            "What the operator last applied, per child (Kind/name: digest@marker; the marker is the live generation, "
            "a volume claim's spec hash or the resourceVersion), so a restarted operator or a new leader re-applies "
            "nothing that is unchanged. Written by the operator."
        ),
    )
    backup: BackupStatus | None = None
