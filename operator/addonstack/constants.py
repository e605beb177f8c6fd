"""Names shared by every layer: label and annotation keys, platform ids and keys, the API group.

One module, so a label key is never spelled two ways (kube-janitor keeps its keys the same way).
"""

from typing import Final

API_GROUP: Final = "addonstack.dev"
API_VERSION: Final = "v1alpha1"
KIND: Final = "AddonStack"
PLURAL: Final = "addonstacks"
BACKUP_KIND: Final = "AddonStackBackup"
BACKUP_PLURAL: Final = "addonstackbackups"
RESTORE_KIND: Final = "AddonStackRestore"
RESTORE_PLURAL: Final = "addonstackrestores"
FIELD_MANAGER: Final = "addonstack-operator"
# The pod sysctl (one of the "safe" ones every Pod Security level admits) that lets a non-root server bind port 80.
UNPRIVILEGED_PORT_SYSCTL: Final = "net.ipv4.ip_unprivileged_port_start"
# Traefik's CRD group for the StripPrefix Middleware emitted with ingress class traefik.
TRAEFIK_API_VERSION: Final = "traefik.io/v1alpha1"

LABEL_NAME: Final = "app.kubernetes.io/name"
LABEL_INSTANCE: Final = "app.kubernetes.io/instance"
LABEL_COMPONENT: Final = "app.kubernetes.io/component"
LABEL_PART_OF: Final = "app.kubernetes.io/part-of"
LABEL_MANAGED_BY: Final = "app.kubernetes.io/managed-by"
LABEL_STACK: Final = f"{API_GROUP}/stack"
LABEL_SERVICE: Final = f"{API_GROUP}/service"
# Shards (controller/shards.py): a stack's fixed bucket, and the shard a Lease holder serves.
LABEL_SHARD_BUCKET: Final = f"{API_GROUP}/shard-bucket"
LABEL_SHARD_INDEX: Final = f"{API_GROUP}/shard-index"
LABEL_SHARD_COUNT: Final = f"{API_GROUP}/shard-count"
# Pod Security Admission: the level a namespace enforces (privileged, baseline, restricted); read, never set.
LABEL_POD_SECURITY_ENFORCE: Final = "pod-security.kubernetes.io/enforce"
ANNOTATION_CONFIG_HASH: Final = f"{API_GROUP}/config-hash"
# Backups and restores: the Job that stops a stack's workloads while it reads or writes their volumes
# (on the AddonStack), the backup id a Job writes, and the mark that its result was recorded (on the Job).
ANNOTATION_QUIESCED_BY: Final = f"{API_GROUP}/quiesced-by"
ANNOTATION_QUIESCED_SERVICES: Final = f"{API_GROUP}/quiesced-services"  # on the stack and on the Job (its plan)
LABEL_BACKUP_ID: Final = f"{API_GROUP}/backup-id"
# On an AddonStackBackup: "pre-upgrade" marks the one the operator makes before moving a stack to a new catalog
# revision (its manifest says trigger: pre-upgrade, so retention never prunes it).
LABEL_PURPOSE: Final = f"{API_GROUP}/purpose"
PURPOSE_PRE_UPGRADE: Final = "pre-upgrade"
LABEL_DATA_JOB: Final = f"{API_GROUP}/data-job"  # "backup" or "restore"
ANNOTATION_RECORDED: Final = f"{API_GROUP}/recorded"
# cert-manager's ingress-shim issues a certificate for an Ingress's tls hosts when one of these is set.
ANNOTATION_CERT_MANAGER_CLUSTER_ISSUER: Final = "cert-manager.io/cluster-issuer"
ANNOTATION_CERT_MANAGER_ISSUER: Final = "cert-manager.io/issuer"
MANAGED_BY: Final = "addonstack"

# Services the platform runs itself; a request for one is dropped with a warning.
INFRASTRUCTURE_IDS: Final = frozenset(
    {
        "openclaw-gateway",
        "openclaw-cli",
        "redis",
        "postgresql",
        "open-webui",
        "caddy",
        "traefik",
        "postgres-setup",
        "convex",
        "convex-dashboard",
        "mission-control",
    }
)

# Keys the platform's own .env already defines; never written by AddonStack.
PLATFORM_ENV_KEYS: Final = frozenset(
    {
        "COMPOSE_FILE",
        "COMPOSE_PROFILES",
        "OPENCLAW_VERSION",
        "OPENCLAW_GATEWAY_TOKEN",
        "OPENCLAW_GATEWAY_PORT",
        "OPENCLAW_BRIDGE_PORT",
        "OPENCLAW_GATEWAY_BIND",
        "OPENCLAW_CONFIG_DIR",
        "OPENCLAW_WORKSPACE_DIR",
        "REDIS_PASSWORD",
        "REDIS_HOST",
        "REDIS_PORT",
        "POSTGRES_USER",
        "POSTGRES_PASSWORD",
        "POSTGRES_DB",
        "POSTGRES_HOST",
        "POSTGRES_PORT",
    }
)

COMPOSE_NETWORK: Final = "openclaw-network"
POSTGRES_SETUP_ID: Final = "postgres-setup"
POSTGRES_HOST: Final = "postgresql"
POSTGRES_PORT: Final = 5432
POSTGRES_CLIENT_IMAGE: Final = "postgres:17.6-alpine"

VERSION: Final = "0.1.0"
# The image backup and restore Jobs run (the operator's own: it carries the agent and PostgreSQL's clients).
BACKUP_AGENT_IMAGE: Final = f"ghcr.io/addonstack/addonstack-operator:{VERSION}"
