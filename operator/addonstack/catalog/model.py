"""Typed model of the service catalog.

The catalog is data (one YAML file per service under ``catalog/``); this module is its schema. The
JSON Schema committed at ``catalog/schema/*.json`` is generated from these classes, so a typo in a
catalog file fails with the file, the field path and the reason. Field names are camelCase on the
wire (YAML, JSON) and snake_case in Python, like every other model in AddonStack.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

ID_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?$"
ENV_KEY_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# ``${KEY}`` (same service or platform key) or ``${service-id.KEY}`` (a required service's variable).
VAR_REF = re.compile(r"\$\{(?:([a-z0-9][a-z0-9-]*)\.)?([A-Za-z_][A-Za-z0-9_]*)\}")

# ``${KEY}`` in command, args or initCommand: a plain variable of the same entry, substituted by the renderers
# (Kubernetes ``$(KEY)``, Compose the env-file value), so a flag can carry a public URL. ``$KEY`` stays the shell's.
COMMAND_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")

ServiceId = Annotated[str, Field(pattern=ID_PATTERN, description="DNS-label-safe id, 1-40 characters.")]
PortNumber = Annotated[int, Field(ge=1, le=65535)]
Platform = Literal["linux/amd64", "linux/arm64"]
Protocol = Literal["http", "grpc", "tcp", "udp"]
Maturity = Literal["stable", "beta", "experimental"]
GpuNeed = Literal["none", "optional", "required"]
PodSecurityLevel = Literal["restricted", "baseline", "privileged"]
# Pod Security Standards from the most permissive to the strictest (index = strictness).
POD_SECURITY_ORDER: tuple[PodSecurityLevel, ...] = ("privileged", "baseline", "restricted")
# Placeholders a public-URL template may use; the planner fills them from spec.ingress or publicBaseUrl.
PUBLIC_URL_PLACEHOLDERS: tuple[str, ...] = (
    "PUBLIC_URL",  # scheme://host[/path] the service is served at, no trailing slash
    "PUBLIC_ORIGIN",  # scheme://host
    "PUBLIC_HOST",  # host name only
    "PUBLIC_PATH",  # the path prefix ("" when the service has its own host), no trailing slash
    "PUBLIC_SCHEME",  # http or https
)
CAPABILITY_PATTERN = r"^[A-Z][A-Z_]*$"
ALL_PLATFORMS: tuple[Platform, ...] = ("linux/amd64", "linux/arm64")


class CatalogModel(BaseModel):
    """Base: camelCase aliases, no unknown fields, immutable once loaded."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class Port(CatalogModel):
    """A port the container listens on."""

    container: PortNumber
    host: PortNumber | None = Field(
        default=None, description="Default host port for Compose; the container port when absent."
    )
    protocol: Protocol = "http"
    exposed: bool = Field(default=True, description="Published on the host (Compose) and eligible for a proxy route.")
    name: Annotated[str, Field(pattern=r"^[a-z]([a-z0-9-]{0,13}[a-z0-9])?$")] | None = Field(
        default=None, description="Kubernetes port name (IANA_SVC_NAME, at most 15 characters)."
    )
    description: str = ""

    @property
    def default_host(self) -> int:
        return self.host if self.host is not None else self.container


class Volume(CatalogModel):
    """A named volume (Compose) or PersistentVolumeClaim (Kubernetes)."""

    name: ServiceId
    container_path: Annotated[str, Field(pattern=r"^/")]
    size_gi: Annotated[int, Field(ge=1, le=1024)] = Field(default=1, description="PVC size in GiB.")
    description: str = ""


class SecretRule(CatalogModel):
    """How to generate a secret value the platform did not supply."""

    length: Annotated[int, Field(ge=8, le=128)] = 32
    alphabet: Literal["hex", "alnum", "base64url"] = "alnum"


class EnvVar(CatalogModel):
    """One environment variable of a service.

    ``default`` may refer to other variables of the same service or to platform keys as ``${KEY}``;
    the planner resolves those after secrets are generated, so a database URL carries the real password.
    """

    key: Annotated[str, Field(pattern=ENV_KEY_PATTERN)]
    description: str
    default: str | None = None
    secret: bool = Field(default=False, description="Sensitive: stored in a Secret, never in status.")
    generate: SecretRule | None = Field(default=None, description="Generate a random value when none is supplied.")
    credential: bool = Field(
        default=False, description="Supplied by the user (an API key and the like), never generated."
    )
    required: bool = Field(
        default=False,
        description="For credentials: the service cannot start without it and is skipped until given.",
    )
    in_container: bool = Field(
        default=True,
        description="Passed to the container. False for helper values used only in templates "
        "and database setup (for example the database password behind a URL).",
    )

    @model_validator(mode="after")
    def _consistent(self) -> EnvVar:
        if self.generate is not None and self.credential:
            raise ValueError("a variable is either generated or a user credential, not both")
        if self.generate is not None and not self.secret:
            raise ValueError("a generated variable must be marked secret: true")
        if self.required and not self.credential:
            raise ValueError("required: true applies to user credentials (credential: true) only")
        return self

    def references(self) -> list[tuple[str, str]]:
        """``(service_id or "", KEY)`` for each ``${...}`` reference in the default."""
        return [(m.group(1) or "", m.group(2)) for m in VAR_REF.finditer(self.default or "")]


class HttpCheck(CatalogModel):
    path: Annotated[str, Field(pattern=r"^/")]
    port: PortNumber
    scheme: Literal["HTTP", "HTTPS"] = "HTTP"
    base_path_var: Annotated[str, Field(pattern=ENV_KEY_PATTERN)] | None = Field(
        default=None,
        description="A variable of the entry holding the base path the app serves every endpoint under, health "
        "included (set from ${PUBLIC_PATH} when routed under a prefix, empty otherwise): the probe asks "
        "<base path><path>, and composeTest must use ${KEY} of it too. Only where upstream code shows the "
        "health endpoint moves under the base path; apps that keep it at the root leave this out.",
    )


class TcpCheck(CatalogModel):
    port: PortNumber


class HealthCheck(CatalogModel):
    """A structured health check.

    Exactly one of ``http``, ``tcp`` or ``exec``. Kubernetes gets an httpGet/tcpSocket probe that
    needs nothing inside the image; Compose gets ``composeTest`` (or ``exec``), which must only call
    a tool the image really ships. Without either, Compose gets no health check.
    """

    http: HttpCheck | None = None
    tcp: TcpCheck | None = None
    exec: list[str] | None = Field(default=None, min_length=1)
    compose_test: list[str] | None = Field(
        default=None,
        min_length=2,
        description='Compose "test", e.g. ["CMD", "wget", "-q", "--spider", "http://localhost:80/"].',
    )
    interval_seconds: Annotated[int, Field(ge=1, le=600)] = 30
    timeout_seconds: Annotated[int, Field(ge=1, le=300)] = 10
    retries: Annotated[int, Field(ge=1, le=30)] = 3
    start_period_seconds: Annotated[int, Field(ge=0, le=1800)] = 30

    @model_validator(mode="after")
    def _exactly_one(self) -> HealthCheck:
        kinds = [k for k in (self.http, self.tcp, self.exec) if k is not None]
        if len(kinds) != 1:
            raise ValueError("give exactly one of http, tcp or exec")
        if self.compose_test is not None and self.compose_test[0] not in ("CMD", "CMD-SHELL"):
            raise ValueError('composeTest must start with "CMD" or "CMD-SHELL"')
        return self


class PostgresNeed(CatalogModel):
    """A service's own PostgreSQL database, role and password variable."""

    database: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    role: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]
    password_var: Annotated[str, Field(pattern=ENV_KEY_PATTERN)]
    extensions: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]] = Field(
        default_factory=list,
        description="Extensions created in the database (quoted, so hyphenated names such as uuid-ossp work).",
    )
    createdb: bool = Field(
        default=False,
        description="Grant CREATEDB to the role: the app's start creates databases itself (Rails db:create, "
        "test databases).",
    )
    schemas: list[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]] = Field(
        default_factory=list, description="Schemas created in the database and owned by the role."
    )


class PublicUrlVar(CatalogModel):
    """A variable that tells the app its public address.

    ``value`` is a template over ``${PUBLIC_URL}``, ``${PUBLIC_ORIGIN}``, ``${PUBLIC_HOST}``,
    ``${PUBLIC_PATH}`` and ``${PUBLIC_SCHEME}``; the planner sets the variable (declared in ``env``) to it
    whenever the stack has a public address (``spec.ingress`` host, or the library's ``publicBaseUrl``).
    With ``of``, the placeholders are those of another service: a worker that is never routed itself but
    writes links to the web app it serves (emails, webhooks) is told that app's address.
    """

    key: Annotated[str, Field(pattern=ENV_KEY_PATTERN)]
    value: str
    of: ServiceId | None = Field(
        default=None,
        description="Fill the placeholders with the public address of this service instead of the entry's own "
        "(a worker or scheduler told the URL of the web app it serves). It must be a service the entry "
        "requires or that requires the entry; when it is not in the stack or not routed, the default stays.",
    )


class PublicUrl(CatalogModel):
    """How the app learns the address users reach it at, and whether it can live under a path."""

    sub_path: bool = Field(
        default=False,
        description="Serves correctly under a path prefix (passed through, not stripped) once told it; "
        "false routes the service on its own host <service>.<host>.",
    )
    env: list[PublicUrlVar] = Field(default_factory=list)


class PodSecurity(CatalogModel):
    """What the image needs from the pod's security context, read from upstream (Dockerfile USER, entrypoint)."""

    level: PodSecurityLevel = Field(
        description="The strictest Pod Security Standard the image runs under: restricted, or baseline "
        "(needs root or extra capabilities; give reason)."
    )
    reason: str | None = Field(
        default=None, description="One sentence from upstream evidence; required below restricted."
    )
    run_as_group: Annotated[int, Field(ge=0)] | None = None
    fs_group: Annotated[int, Field(ge=0)] | None = Field(
        default=None, description="Group that owns freshly provisioned volumes (fsGroupChangePolicy: OnRootMismatch)."
    )
    read_only_root_filesystem: bool = False
    writable_paths: list[Annotated[str, Field(pattern=r"^/")]] = Field(
        default_factory=list,
        description="Scratch paths the image writes to that are not writable for its user (or not at all under "
        "readOnlyRootFilesystem): each gets an empty emptyDir (Compose: tmpfs), whether or not the root "
        "filesystem is read-only.",
    )
    unprivileged_port_start: Annotated[int, Field(ge=0, le=1024)] | None = Field(
        default=None,
        description="Lowest port a process without root may bind, for a non-root server listening below 1024 "
        "(nginx or Apache on port 80): the pod sysctl net.ipv4.ip_unprivileged_port_start (one of the safe "
        "sysctls restricted admits; Compose: sysctls). Give the lowest port the server listens on.",
    )
    add_capabilities: list[Annotated[str, Field(pattern=CAPABILITY_PATTERN)]] = Field(
        default_factory=list, description="Added back after dropping ALL (e.g. NET_BIND_SERVICE)."
    )

    @model_validator(mode="after")
    def _reason(self) -> PodSecurity:
        if self.level != "restricted" and not self.reason:
            raise ValueError(f"level {self.level} needs a reason (one sentence from upstream evidence)")
        return self


class BuildSource(CatalogModel):
    """Where the image is built from, for services without a published image."""

    repository: str
    ref: str | None = Field(default=None, description="Git tag or commit the build is pinned to.")
    dockerfile: str = "Dockerfile"
    context: str = "."


class SkillRef(CatalogModel):
    skill_id: ServiceId
    auto_install: bool = True


class GatewayEnv(CatalogModel):
    """A variable the OpenClaw gateway gets so its skills can reach this service."""

    key: Annotated[str, Field(pattern=ENV_KEY_PATTERN)]
    value: str


class Service(CatalogModel):
    """One service a tenant can buy."""

    id: ServiceId
    name: str
    description: str = Field(min_length=10)
    category: ServiceId
    icon: str
    image: str | None = Field(default=None, description="Repository without tag; absent when built.")
    image_tag: str | None = None
    build: BuildSource | None = None
    platform_provided: bool = Field(
        default=False,
        description="Infrastructure the platform runs itself (PostgreSQL, Redis, proxy, gateway); "
        "listed for reference, never deployed as an addon.",
    )
    ports: list[Port] = Field(default_factory=list)
    volumes: list[Volume] = Field(default_factory=list)
    env: list[EnvVar] = Field(default_factory=list)
    command: list[str] | None = Field(
        default=None,
        description="Overrides the image entrypoint. ${KEY} names a plain (not secret) variable of this entry with "
        "a default; the renderers put its value there, so a public-URL variable can reach a flag.",
    )
    args: list[str] | None = Field(
        default=None, description="Overrides the image command; ${KEY} as in command (e.g. --web.external-url=${URL})."
    )
    init_command: list[str] | None = Field(
        default=None,
        min_length=1,
        description="Runs to completion before the service starts, with the same image, environment and "
        "volumes (migrations): a Kubernetes initContainer, a one-shot Compose service. ${KEY} as in command.",
    )
    memory_mb: Annotated[int, Field(ge=16, le=65536)]
    maturity: Maturity = "stable"
    proxy_path: Annotated[str, Field(pattern=r"^/[a-z0-9/_-]*$")] | None = None
    cap_drop_compatible: bool = False
    run_as_user: Annotated[int, Field(ge=0)] | None = None
    pod_security: PodSecurity | None = None
    public_url: PublicUrl | None = None
    docker_socket: bool = Field(
        default=False,
        description="Needs the Docker engine's socket: skipped on Kubernetes; Compose mounts it only when "
        "the input sets allowDockerSocket.",
    )
    maturity_note: str | None = Field(
        default=None, description="For beta and experimental entries: the known limits, or what is missing."
    )
    sources: list[str] = Field(
        default_factory=list, description="Upstream files read to verify this entry (Dockerfile, compose, chart)."
    )
    verified: date | None = Field(default=None, description="When the entry was last checked against sources.")
    health_check: HealthCheck | None = None
    gpu: GpuNeed = "none"
    platforms: list[Platform] = Field(default_factory=lambda: list(ALL_PLATFORMS), min_length=1)
    requires: list[ServiceId] = Field(default_factory=list)
    recommends: list[ServiceId] = Field(default_factory=list)
    conflicts: list[ServiceId] = Field(default_factory=list)
    postgres: PostgresNeed | None = None
    workload: Literal["Deployment", "StatefulSet"] = "Deployment"
    scalable: bool = Field(default=False, description="Safe to run more than one replica.")
    skills: list[SkillRef] = Field(default_factory=list)
    gateway_env: list[GatewayEnv] = Field(default_factory=list)
    docs_url: str
    tags: list[str] = Field(default_factory=list)
    removal_warning: str | None = None

    @model_validator(mode="after")
    def _image_or_build(self) -> Service:
        if self.platform_provided:
            return self
        if self.image is None and self.build is None:
            raise ValueError("give image and imageTag, or build for services without a published image")
        if self.image is not None:
            if not self.image_tag:
                raise ValueError("imageTag is required with image")
            if ":" in self.image.rsplit("/", 1)[-1]:
                raise ValueError("image must not carry a tag; put it in imageTag")
            if self.image_tag == "latest" or self.image_tag.endswith("-latest"):
                raise ValueError(f"imageTag {self.image_tag!r} is not pinned; use a release tag")
            if self.image.startswith(("bitnami/", "docker.io/bitnami/")):
                raise ValueError("Bitnami images are not used; use the project's own image")
        return self

    @property
    def image_ref(self) -> str | None:
        return f"{self.image}:{self.image_tag}" if self.image else None

    @property
    def pod_security_level(self) -> PodSecurityLevel:
        """The strictest Pod Security level the image runs under; baseline when the entry does not say."""
        return self.pod_security.level if self.pod_security is not None else "baseline"

    @property
    def scratch_paths(self) -> list[str]:
        """``podSecurity.writablePaths`` minus those a volume of the entry already covers: each gets an
        ``emptyDir`` (Compose: ``tmpfs``), with or without a read-only root filesystem."""
        if self.pod_security is None:
            return []
        mounted = {v.container_path.rstrip("/") for v in self.volumes}
        return [path for path in self.pod_security.writable_paths if path.rstrip("/") not in mounted]

    @property
    def needs_build(self) -> bool:
        return self.image is None

    @functools.cached_property
    def env_by_key(self) -> dict[str, EnvVar]:
        """The variables by key: worked out once per loaded entry (entries are frozen), since planning and
        rendering look variables up by key thousands of times per large stack."""
        out: dict[str, EnvVar] = {}
        for e in self.env:
            out.setdefault(e.key, e)  # the first wins, as before (the catalog lint refuses duplicates)
        return out

    def env_var(self, key: str) -> EnvVar | None:
        return self.env_by_key.get(key)


class Category(CatalogModel):
    id: ServiceId
    name: str
    icon: str
    description: str = ""


class McpTool(CatalogModel):
    """One MCP tool a skill offers to the agent."""

    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
    description: str
    input_schema: dict[str, object] = Field(description="JSON Schema of the tool's arguments.")


class Skill(CatalogModel):
    """A skill: instructions plus MCP tools, rendered to ``<id>/SKILL.md`` for the gateway."""

    id: ServiceId
    name: str
    description: str
    services: list[ServiceId] = Field(default_factory=list, description="Services the skill talks to.")
    instructions: str = Field(min_length=20, description="Markdown body of SKILL.md.")
    tools: list[McpTool] = Field(default_factory=list)


class SkillPack(CatalogModel):
    """A task bundle: services plus the skills that use them."""

    id: ServiceId
    name: str
    description: str
    icon: str
    required_services: list[ServiceId] = Field(min_length=1)
    optional_services: list[ServiceId] = Field(default_factory=list)
    skills: list[ServiceId] = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Catalog:
    """All catalog data, indexed by id (``sources`` maps ``kind:id`` to the file it came from)."""

    services: dict[str, Service]
    categories: dict[str, Category]
    skills: dict[str, Skill]
    packs: dict[str, SkillPack]
    sources: dict[str, str] = field(default_factory=dict, compare=False)

    def service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def addons(self) -> list[Service]:
        """Services a tenant can deploy (not the platform's own infrastructure)."""
        return [s for s in self.services.values() if not s.platform_provided]
