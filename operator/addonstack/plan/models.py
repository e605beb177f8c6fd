"""Input and result models of the library contract (``@better-openclaw/core``'s JSON names).

Python code uses snake_case; ``model_dump(by_alias=True)`` and JSON use the camelCase names platforms
already send. ``AddonStackInput.model_validate(untrusted)`` is the one place user data is checked:
unknown fields, wrong types, malformed ids and out-of-range ports are rejected with the field named.
"""

from __future__ import annotations

import hashlib
import re
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from addonstack.catalog.model import ENV_KEY_PATTERN, ID_PATTERN
from addonstack.plan.images import registry_problem
from addonstack.reasons import SkipReason

INSTANCE_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
_IMAGE_PATH = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_REF = re.compile(
    rf"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?(?::[0-9]+)?/)?{_IMAGE_PATH}(?:/{_IMAGE_PATH})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?"
)


def _matching(pattern: str, fix: str) -> Any:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.fullmatch(value):  # fullmatch: "$" alone would accept a trailing newline
            raise ValueError(f"{value!r} is not valid: {fix}")
        return value

    return AfterValidator(check)


InstanceId = Annotated[
    str,
    _matching(
        INSTANCE_PATTERN,
        "use 1-63 lower-case letters, digits or '-', not starting or ending with '-' (e.g. 'tenant-42')",
    ),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": INSTANCE_PATTERN,
            "maxLength": 63,
            "description": "DNS label: 1-63 of [a-z0-9-], not starting or ending with '-'.",
        }
    ),
]
Id = Annotated[
    str,
    _matching(ID_PATTERN, "catalog ids are lower-case letters, digits and '-' (see `addonstack catalog list`)"),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": ID_PATTERN,
            "maxLength": 40,
            "description": "A catalog id: [a-z0-9-], 1-40 characters.",
        }
    ),
]
# Ids a request names: any short text. One that is not in the catalog is a skip (``unknown_service``) with
# a did-you-mean, as the TypeScript package does, not a rejection of the whole request.
RequestedId = Annotated[str, Field(min_length=1, max_length=100)]
# What the TypeScript package accepts as an instance id (``My_Instance_123``); names and labels use
# :func:`instance_slug`. Control characters are refused: the id is written into the env file's header.
LooseInstanceId = Annotated[
    str,
    Field(min_length=1, max_length=253),
    _matching(r"[^\x00-\x1f\x7f]+", "use printable characters only (no newline or control character)"),
]
EnvKey = Annotated[str, Field(pattern=ENV_KEY_PATTERN)]
# Override keys get a message with the fix; the JSON Schema (and the CRD's CEL rule) keeps the pattern.
OverrideKey = Annotated[
    str,
    _matching(ENV_KEY_PATTERN, "variable names are letters, digits and '_', not starting with a digit"),
    WithJsonSchema({"type": "string", "pattern": ENV_KEY_PATTERN, "maxLength": 253}),
]
PUBLIC_BASE_URL_PATTERN = (
    r"^https?://[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*(:[0-9]{1,5})?(/[a-z0-9/_-]*)?$"
)
PublicBaseUrl = Annotated[
    str,
    _matching(
        PUBLIC_BASE_URL_PATTERN, "give scheme and host, optionally a port and a path, e.g. https://box.example.com"
    ),
    WithJsonSchema({"type": "string", "pattern": PUBLIC_BASE_URL_PATTERN, "maxLength": 300}),
]
HostPort = Annotated[int, Field(ge=1, le=65535)]
PlatformName = Literal["linux/amd64", "linux/arm64"]


def instance_slug(instance_id: str) -> str:
    """A DNS label for names and labels: ``My_Instance_123`` -> ``my-instance-123``.

    An id that is already a DNS label is its own slug. Otherwise the slug gets a short hash of the id, so
    two ids that differ only in case or punctuation (``A_b`` and ``a-b``) never share a slug.
    """
    if re.fullmatch(INSTANCE_PATTERN, instance_id):
        return instance_id
    base = re.sub(r"[^a-z0-9]+", "-", instance_id.lower()).strip("-")[:54].strip("-")
    digest = hashlib.sha256(instance_id.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{base}-{digest}" if base else f"i-{digest}"


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    # Inputs carry credentials and env files: pydantic's error text must not quote values back.
    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        hide_input_in_errors=True,
        use_enum_values=True,  # dumps hold plain strings (YAML emitters take no str subclasses)
    )


class StackOptions(ApiModel):
    """Options shared by generate and update."""

    skill_packs: list[RequestedId] = Field(default_factory=list)
    reserved_ports: list[HostPort] = Field(default_factory=list)
    port_overrides: dict[Id, dict[str, HostPort]] = Field(
        default_factory=dict,
        description='{serviceId: {"<default host port>": hostPort}}',
    )
    generate_secrets: bool = True
    credentials: dict[Id, dict[EnvKey, str]] = Field(default_factory=dict)
    prebuilt_images: dict[Id, Annotated[str, Field(min_length=1, max_length=512)]] = Field(default_factory=dict)
    platform: PlatformName = "linux/amd64"
    gpu: bool = False
    existing_services: list[Id] = Field(default_factory=list)
    public_base_url: PublicBaseUrl | None = Field(
        default=None,
        description="Where users reach the stack (e.g. https://box.example.com): services are told their "
        "public URL under it; those that cannot live under a path get <service>.<host>.",
    )
    env_overrides: dict[Id, dict[OverrideKey, str]] = Field(
        default_factory=dict, description="{serviceId: {KEY: value}}, applied after every other value."
    )
    allow_experimental: bool = Field(
        default=False, description="Deploy experimental catalog entries (skipped by default)."
    )
    allow_docker_socket: bool = Field(
        default=False, description="Mount /var/run/docker.sock into services that need the Docker engine."
    )
    image_registry: Annotated[str, Field(max_length=255)] | None = Field(
        default=None,
        description="Registry mirror (host[:port][/prefix]) every image is pulled through: redis:7 becomes "
        "<mirror>/library/redis:7, ghcr.io/a/b:1 becomes <mirror>/ghcr.io/a/b:1; also in prePullImages.",
    )
    openclaw_version: str = Field(default="latest", max_length=100, description="Recorded; changes nothing today.")
    ai_providers: list[Annotated[str, Field(max_length=100)]] = Field(
        default_factory=list, description="Recorded; changes nothing today."
    )

    @field_validator("port_overrides")
    @classmethod
    def _override_keys(cls, value: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
        for sid, mapping in value.items():
            for key in mapping:
                if not key.isdigit() or not 1 <= int(key) <= 65535:
                    raise ValueError(f"portOverrides.{sid}: key {key!r} must be a default host port number (1-65535)")
        return value

    @field_validator("prebuilt_images")
    @classmethod
    def _image_refs(cls, value: dict[str, str]) -> dict[str, str]:
        for sid, ref in value.items():
            # The reference grammar Docker uses; also keeps "$" (Compose interpolation) out of the file.
            if not IMAGE_REF.fullmatch(ref):
                raise ValueError(f"prebuiltImages.{sid}: {ref!r} is not an image reference ([registry/]name[:tag])")
        return value

    @field_validator("image_registry")
    @classmethod
    def _registry(cls, value: str | None) -> str | None:
        if value is not None and (problem := registry_problem(value)):
            raise ValueError(problem)
        return value

    @model_validator(mode="after")
    def _overrides_vs_reserved(self) -> StackOptions:
        reserved = set(self.reserved_ports)
        for sid, mapping in self.port_overrides.items():
            for key, port in mapping.items():
                if port in reserved:
                    raise ValueError(f"portOverrides.{sid}.{key}: port {port} is in reservedPorts; choose another port")
        return self


class AddonStackInput(StackOptions):
    """What a platform asks for."""

    instance_id: LooseInstanceId
    services: list[RequestedId]


class AddonStackUpdateInput(StackOptions):
    """Change an existing stack: the files it produced plus what to add and remove.

    Options left out keep the value the stack was generated with (the ``x-addonstack`` state block);
    options given replace it.
    """

    instance_id: LooseInstanceId
    current_compose: str
    current_env: str
    add_services: list[RequestedId] = Field(default_factory=list)
    remove_services: list[RequestedId] = Field(default_factory=list)
    upgrade: bool = Field(
        default=False, description="Move services that stay to the catalog's current image (else they keep theirs)."
    )
    regenerate_missing_secrets: bool = Field(
        default=False,
        description="Issue a new value for a secret missing from currentEnv whose loss breaks stored data "
        "(an encryption key); without it such a gap is an error.",
    )


class SkippedService(ApiModel):
    service_id: str
    reason: SkipReason
    details: str
    required_credentials: list[str] | None = None


class ProxyRoute(ApiModel):
    """An HTTP route a reverse proxy serves: ``path`` is always set."""

    service_id: str
    path: str
    port: int
    protocol: Literal["http"] = "http"
    strip_prefix: bool
    host: str | None = Field(
        default=None, description="Host the route matches (the service's own host); None: the stack's shared host."
    )


class StreamRoute(ApiModel):
    """A gRPC, TCP or UDP port: not an HTTP route; a proxy needs a TCP/UDP (layer 4) entry point for it."""

    service_id: str
    port: int = Field(description="Container port.")
    host_port: int | None = Field(description="Host port on the Compose target; None when not published.")
    protocol: Literal["grpc", "tcp", "udp"]


class EnvVarView(ApiModel):
    """One variable as a platform UI shows it (``key, description, value, secret`` as in the TypeScript package)."""

    key: str
    description: str
    value: str
    secret: bool
    env_key: str | None = Field(description="Name in the env file; None when Compose builds it.")
    generated: bool
    credential: bool


class ServiceEnv(ApiModel):
    service_name: str = Field(description="The service's display name.")
    service_id: str
    vars: list[EnvVarView]


class PrePullImage(ApiModel):
    """An image worth pulling before ``docker compose up``; priority 1 first (the largest services)."""

    service_id: str
    image: str
    priority: int = Field(ge=1, le=3)


class StackMetadata(ApiModel):
    service_count: int
    resolved_services: list[str]
    skipped_services: list[SkippedService]
    port_assignments: dict[str, int]
    added_dependencies: list[str]
    generated_secret_keys: list[str]
    estimated_memory_mb: int = Field(alias="estimatedMemoryMB")
    skill_count: int
    pre_pull_images: list[PrePullImage]
    instance_slug: str = Field(description="DNS-safe form of instanceId used in names and labels.")


class RenderedOutputs(ApiModel):
    """What generate and update both return: the Compose overlay, env file, skills and routes."""

    compose_override: str
    env_file: str
    env_vars: list[ServiceEnv]
    proxy_routes: list[ProxyRoute]
    stream_routes: list[StreamRoute]
    skill_files: dict[str, str] = Field(description="openclaw/workspace/skills/<skillId>/SKILL.md -> Markdown")
    openclaw_config_patch: dict[str, object]
    additional_files: dict[str, str] = Field(description="Config files a service needs beside the Compose file.")
    gateway_env: dict[str, str] = Field(description="Variables the OpenClaw gateway needs for the skills.")


class AddonStackResult(RenderedOutputs):
    metadata: StackMetadata
    warnings: list[str]


class UpdateMetadata(StackMetadata):
    added: list[str]
    removed: list[str]
    unchanged: list[str]
    estimated_memory_delta: int = Field(description="MB of added minus removed services.")


class AddonStackUpdateResult(RenderedOutputs):
    images_to_pull: list[str]
    new_skill_files: dict[str, str]
    removed_skill_slugs: list[str]
    add_proxy_routes: list[ProxyRoute]
    remove_proxy_routes: list[str] = Field(description="Service ids whose routes go away.")
    restart_required: list[str]
    metadata: UpdateMetadata
    warnings: list[str]
