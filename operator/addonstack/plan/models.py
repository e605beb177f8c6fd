"""Input and result models of the library contract (``@better-openclaw/core``'s JSON names).

Python code uses snake_case; ``model_dump(by_alias=True)`` and JSON use the camelCase names platforms
already send. ``AddonStackInput.model_validate(untrusted)`` is the one place user data is checked:
unknown fields, wrong types, malformed ids and out-of-range ports are rejected with the field named.
"""

from __future__ import annotations

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
SkipReason = Literal[
    "unknown_service",
    "no_image",
    "gpu_required",
    "missing_credentials",
    "platform_unsupported",
    "conflict",
    "dependency_skipped",
    "experimental",
    "docker_socket",
]


class ApiModel(BaseModel):
    """camelCase on the wire, snake_case in Python, unknown fields rejected."""

    # Inputs carry credentials and env files: pydantic's error text must not quote values back.
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", hide_input_in_errors=True
    )


class StackOptions(ApiModel):
    """Options shared by generate and update."""

    skill_packs: list[Id] = Field(default_factory=list)
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

    instance_id: InstanceId
    services: list[Id]


class AddonStackUpdateInput(StackOptions):
    """Change an existing stack: the files it produced plus what to add and remove."""

    instance_id: InstanceId
    current_compose: str
    current_env: str
    add_services: list[Id] = Field(default_factory=list)
    remove_services: list[Id] = Field(default_factory=list)


class SkippedService(ApiModel):
    service_id: str
    reason: SkipReason
    details: str
    required_credentials: list[str] | None = None


class ProxyRoute(ApiModel):
    """How a proxy reaches a service: ``path`` is set for HTTP routes, None for other protocols."""

    service_id: str
    path: str | None
    port: int
    protocol: Literal["http", "grpc", "tcp", "udp"]
    strip_prefix: bool
    host: str | None = Field(
        default=None, description="Host the route matches (the service's own host); None: the stack's shared host."
    )


class EnvVarView(ApiModel):
    """One variable as a platform UI shows it."""

    key: str
    env_key: str | None = Field(description="Name in the env file; None when Compose builds it.")
    value: str
    secret: bool
    generated: bool
    credential: bool
    description: str


class ServiceEnv(ApiModel):
    service_id: str
    name: str
    variables: list[EnvVarView]


class StackMetadata(ApiModel):
    service_count: int
    resolved_services: list[str]
    skipped_services: list[SkippedService]
    port_assignments: dict[str, int]
    added_dependencies: list[str]
    generated_secret_keys: list[str]
    estimated_memory_mb: int = Field(alias="estimatedMemoryMB")
    skill_count: int


class RenderedOutputs(ApiModel):
    """What generate and update both return: the Compose overlay, env file, skills and routes."""

    compose_override: str
    env_file: str
    env_vars: list[ServiceEnv]
    proxy_routes: list[ProxyRoute]
    skill_files: dict[str, str]
    openclaw_config_patch: dict[str, object]


class AddonStackResult(RenderedOutputs):
    metadata: StackMetadata
    warnings: list[str]


class UpdateMetadata(StackMetadata):
    added: list[str]
    removed: list[str]
    unchanged: list[str]


class AddonStackUpdateResult(RenderedOutputs):
    images_to_pull: list[str]
    metadata: UpdateMetadata
    warnings: list[str]
