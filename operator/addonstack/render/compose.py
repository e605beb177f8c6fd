"""Docker Compose target: an override file for the platform's own compose project, plus its env file.

Only addon services (and ``postgres-setup`` when a service needs a database) appear, all on the
platform's external ``openclaw-network``. Images are pinned, secrets are ``${VAR}`` references into
the env file, GPU services get a device reservation when the host has a GPU, and each service runs with
the user, capabilities, read-only root filesystem, scratch ``tmpfs`` and unprivileged-port sysctl its catalog
``podSecurity`` declares (as on Kubernetes); a one-shot ``<id>-volumes`` step stands in for Kubernetes'
``fsGroup``. The output validates against the Compose specification's JSON Schema.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from addonstack.catalog.model import HealthCheck
from addonstack.constants import (
    COMPOSE_NETWORK,
    POSTGRES_CLIENT_IMAGE,
    POSTGRES_HOST,
    POSTGRES_PORT,
    POSTGRES_SETUP_ID,
    UNPRIVILEGED_PORT_SYSCTL,
    VERSION,
)
from addonstack.plan.build import PlannedService, StackPlan, built_image
from addonstack.plan.databases import setup_script
from addonstack.plan.images import mirror_image
from addonstack.plan.secrets import env_file_key
from addonstack.render import envfile
from addonstack.render.values import compose_command_item, compose_escape, compose_expression, stored_value

GENERATOR = f"addonstack/{VERSION}"
DOCKER_SOCKET = "/var/run/docker.sock"
MARKER = "x-addonstack"


def volume_key(service_id: str, name: str) -> str:
    return name if name.startswith(service_id) else f"{service_id}-{name}"


def _healthcheck(hc: HealthCheck | None, item: Callable[[str], str] = compose_escape) -> dict[str, Any] | None:
    """``item`` renders each composeTest item (``${KEY}`` of the entry's variables, like command and args);
    an ``exec`` check is passed as written, as Kubernetes runs it."""
    if hc is None:
        return None
    if hc.compose_test:
        test = [item(t) for t in hc.compose_test]
    elif hc.exec:
        test = ["CMD", *(compose_escape(t) for t in hc.exec)]
    else:
        return None
    return {
        "test": test,
        "interval": f"{hc.interval_seconds}s",
        "timeout": f"{hc.timeout_seconds}s",
        "retries": hc.retries,
        "start_period": f"{hc.start_period_seconds}s",
    }


def _has_healthcheck(hc: HealthCheck | None) -> bool:
    """Whether :func:`_healthcheck` gives a check, without building it."""
    return hc is not None and bool(hc.compose_test or hc.exec)


def init_id(service_id: str) -> str:
    """The one-shot Compose service that runs a service's ``initCommand`` (migrations) first."""
    return f"{service_id}-init"


def volumes_id(service_id: str) -> str:
    """The one-shot Compose service that hands a non-root service its named volumes first."""
    return f"{service_id}-volumes"


def _volume_owner(p: PlannedService) -> str | None:
    """``uid:gid`` a service's named volumes must belong to under Compose, or None.

    Kubernetes makes a volume writable for a non-root user through the pod's ``fsGroup``; Compose has no
    such thing: a new named volume copies the owner of the image's directory (root when the image sets no
    ``USER``), so an entry that runs as its ``runAsUser`` with an ``fsGroup`` gets its volumes handed over
    by a one-shot step (:func:`_volumes_service`) instead.
    """
    svc, ps = p.service, p.service.pod_security
    if svc.run_as_user is None or ps is None or ps.fs_group is None or not svc.volumes:
        return None
    return f"{svc.run_as_user}:{ps.fs_group}"


def _volumes_service(plan: StackPlan, p: PlannedService, owner: str) -> dict[str, Any]:
    """Root with only CHOWN and DAC_READ_SEARCH, no network: each volume whose top directory is not yet
    ``owner`` is chowned recursively (as ``fsGroupChangePolicy: OnRootMismatch``, so a large volume that is
    already right is not walked again). Runs in the small PostgreSQL client image (busybox ``stat``/``chown``),
    not the service's own image, which may have no shell."""
    script = f'for d in "$@"; do [ "$(stat -c %u:%g "$d")" = {owner} ] || chown -R {owner} "$d"; done'
    paths = [compose_escape(v.container_path) for v in p.service.volumes]
    return {
        "image": mirror_image(POSTGRES_CLIENT_IMAGE, plan.image_registry),
        "restart": "no",
        "user": "0:0",
        "entrypoint": ["sh", "-c", compose_escape(script), "sh", *paths],
        "volumes": [f"{volume_key(p.id, v.name)}:{v.container_path}" for v in p.service.volumes],
        "network_mode": "none",
        "cap_drop": ["ALL"],
        "cap_add": ["CHOWN", "DAC_READ_SEARCH"],
        "security_opt": ["no-new-privileges:true"],
        "labels": {"dev.addonstack.instance": plan.slug, "dev.addonstack.service": volumes_id(p.id)},
    }


def _build(p: PlannedService) -> dict[str, Any] | None:
    """A git build context pinned to the catalog's ref (``<repo>.git#<ref>[:<dir>]``), for unpublished images."""
    b = p.service.build
    if b is None or b.ref is None or p.image != built_image(p.id, b.ref):
        return None
    repo = b.repository if b.repository.endswith(".git") else f"{b.repository.rstrip('/')}.git"
    sub = b.context.strip("/")
    context = f"{repo}#{b.ref}" + (f":{sub}" if sub not in ("", ".") else "")
    return {"context": compose_escape(context), "dockerfile": compose_escape(b.dockerfile)}


def _base(plan: StackPlan, p: PlannedService) -> dict[str, Any]:
    """What a service and its init step share: image (or build), environment, volumes, network."""
    svc = p.service
    out: dict[str, Any] = {"image": p.image}
    if (build := _build(p)) is not None:
        out["build"] = build
    sid, own, values = p.id, p.values.values, plan.values
    env = {
        var.key: compose_expression(values, plan, sid, var.key)
        for var in svc.env
        if var.in_container and var.key in own
    }
    env.update({key: compose_expression(values, plan, sid, key) for key in p.extra_env})
    if env:
        out["environment"] = env
    volumes = [f"{volume_key(p.id, v.name)}:{v.container_path}" for v in svc.volumes]
    if svc.docker_socket:  # resolution keeps these services only when the input sets allowDockerSocket
        volumes.append(f"{DOCKER_SOCKET}:{DOCKER_SOCKET}")
    if volumes:
        out["volumes"] = volumes
    out["networks"] = [COMPOSE_NETWORK]
    return out


def _depends(plan: StackPlan, p: PlannedService, healthy: set[str]) -> dict[str, Any]:
    deps: dict[str, Any] = {}
    if _volume_owner(p) is not None:
        deps[volumes_id(p.id)] = {"condition": "service_completed_successfully"}
    if p.database is not None:
        deps[POSTGRES_SETUP_ID] = {"condition": "service_completed_successfully"}
    for dep in p.service.requires:
        if dep in plan.values:
            deps[dep] = {"condition": "service_healthy" if dep in healthy else "service_started"}
    return deps


def _hardening(p: PlannedService) -> dict[str, Any]:
    """The catalog's ``podSecurity`` in Compose terms: the same user, capabilities and read-only root filesystem
    as on Kubernetes, so a restricted entry runs as its non-root user here too."""
    svc = p.service
    ps = svc.pod_security
    out: dict[str, Any] = {}
    if svc.run_as_user is not None:
        group = ps.run_as_group if ps is not None else None
        out["user"] = f"{svc.run_as_user}" + (f":{group}" if group is not None else "")
    if svc.pod_security_level == "restricted" or svc.cap_drop_compatible:
        out["cap_drop"] = ["ALL"]
    if ps is not None and ps.add_capabilities:
        out["cap_add"] = list(ps.add_capabilities)
    if ps is not None and ps.read_only_root_filesystem:
        out["read_only"] = True
    if tmpfs := svc.scratch_paths:
        out["tmpfs"] = tmpfs
    if ps is not None and ps.unprivileged_port_start is not None:
        out["sysctls"] = {UNPRIVILEGED_PORT_SYSCTL: str(ps.unprivileged_port_start)}
    out["security_opt"] = ["no-new-privileges:true"]
    return out


def _init_service(plan: StackPlan, p: PlannedService, healthy: set[str]) -> dict[str, Any]:
    entrypoint = [compose_command_item(plan, p.id, c) for c in p.service.init_command or []]
    out = {**_base(plan, p), "restart": "no", "entrypoint": entrypoint}
    out.pop("build", None)  # the service itself builds the image; both use the same tag
    if deps := _depends(plan, p, healthy):
        out["depends_on"] = deps
    out.update(_hardening(p))
    out["labels"] = {"dev.addonstack.instance": plan.instance_id, "dev.addonstack.service": init_id(p.id)}
    return out


def _service(plan: StackPlan, p: PlannedService, healthy: set[str]) -> dict[str, Any]:
    svc = p.service
    out: dict[str, Any] = {**_base(plan, p), "restart": "unless-stopped"}
    if svc.command:
        out["entrypoint"] = [compose_command_item(plan, p.id, c) for c in svc.command]
    if svc.args:
        out["command"] = [compose_command_item(plan, p.id, c) for c in svc.args]
    if p.ports:
        proto = {port.container: port.protocol for port in svc.ports}
        out["ports"] = [
            f"{a.host}:{a.container}" + ("/udp" if proto.get(a.container) == "udp" else "") for a in p.ports
        ]
    hc = _healthcheck(svc.health_check, lambda text: compose_command_item(plan, p.id, text))
    if hc:
        out["healthcheck"] = hc
    deps = _depends(plan, p, healthy)
    if svc.init_command:
        deps[init_id(p.id)] = {"condition": "service_completed_successfully"}
    if deps:
        out["depends_on"] = deps
    out.update(_hardening(p))
    if p.gpu:
        out["deploy"] = {
            "resources": {"reservations": {"devices": [{"driver": "nvidia", "count": "all", "capabilities": ["gpu"]}]}}
        }
    out["labels"] = {"dev.addonstack.instance": plan.slug, "dev.addonstack.service": p.id}
    return out


def _postgres_setup(plan: StackPlan) -> dict[str, Any]:
    env: dict[str, str] = {
        "PGHOST": POSTGRES_HOST,
        "PGPORT": str(POSTGRES_PORT),
        "PGUSER": "${POSTGRES_USER}",
        "PGPASSWORD": "${POSTGRES_PASSWORD}",
        "PGDATABASE": "${POSTGRES_DB:-postgres}",
    }
    for need in plan.databases:
        env[need.password_env] = "${" + env_file_key(need.service_id, need.password_key) + "}"
    return {
        "image": mirror_image(POSTGRES_CLIENT_IMAGE, plan.image_registry),
        "restart": "no",
        "entrypoint": ["sh", "-c"],
        "command": [compose_escape(setup_script(plan.databases))],
        "environment": env,
        "networks": [COMPOSE_NETWORK],
        "security_opt": ["no-new-privileges:true"],
        "labels": {"dev.addonstack.instance": plan.slug, "dev.addonstack.service": POSTGRES_SETUP_ID},
    }


def render_compose(
    plan: StackPlan, settings: Mapping[str, Any] | None = None, kept: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The override document as plain data (dump it with :func:`addonstack.render.yamlio.dump`).

    ``settings`` (the options the stack was made with) go into the state block so an update applies them
    again; ``kept`` holds Compose entries an update carries over as they are (hand-added services, services
    gone from the catalog).
    """
    healthy = {p.id for p in plan.services if _has_healthcheck(p.service.health_check)}
    services: dict[str, Any] = {}
    if plan.databases:
        services[POSTGRES_SETUP_ID] = _postgres_setup(plan)
    for p in plan.services:
        if (owner := _volume_owner(p)) is not None:
            services[volumes_id(p.id)] = _volumes_service(plan, p, owner)
        if p.service.init_command:
            services[init_id(p.id)] = _init_service(plan, p, healthy)
        services[p.id] = _service(plan, p, healthy)
    for sid, entry in (kept or {}).items():
        services.setdefault(sid, entry)
    marker: dict[str, Any] = {
        "instance": plan.instance_id,
        "generator": GENERATOR,
        "requested": plan.requested,
        "skillPacks": plan.packs,
        "services": plan.ids,
    }
    if settings:
        marker["settings"] = dict(settings)
    doc: dict[str, Any] = {MARKER: marker, "services": services}
    volumes: dict[str, Any] = {volume_key(p.id, v.name): {} for p in plan.services for v in p.service.volumes}
    for entry in (kept or {}).values():
        for spec in entry.get("volumes") or [] if isinstance(entry, dict) else []:
            name = str(spec).split(":", 1)[0]
            if ":" in str(spec) and name and not name.startswith((".", "/", "~", "$")):
                volumes.setdefault(name, {})
    if volumes:
        doc["volumes"] = volumes
    doc["networks"] = {COMPOSE_NETWORK: {"external": True}}
    return doc


def render_env_file(plan: StackPlan, kept: Mapping[str, Mapping[str, str]] | None = None) -> str:
    """The env file; ``kept`` holds a previous file's lines per service, so keys a person added survive.

    Sections in ``kept`` for services the plan does not render (carried over by an update) are written
    after the planned ones, as they were.
    """
    sections = []
    for p in plan.services:
        entries = []
        sid, env_var = p.id, p.service.env_var
        for key, chosen in p.values.values.items():
            lit = stored_value(plan, sid, key)
            if lit is None:
                continue
            var = env_var(key)
            comment = var.description if var else ""
            if chosen.origin == "unset":
                comment = f"{comment} SET ME: no value was generated.".strip()
            entries.append((comment, env_file_key(sid, key), lit))
        written = {key for _, key, _ in entries}
        for key, value in (kept or {}).get(p.id, {}).items():
            if key not in written:
                entries.append(("Kept from the previous file (not a catalog variable).", key, value))
        sections.append(envfile.EnvSection(p.id, f"{p.service.name} ({p.id})", entries))
    planned = set(plan.ids)
    for sid, values in (kept or {}).items():
        if sid not in planned:
            entries = [("Kept from the previous file.", key, value) for key, value in values.items()]
            sections.append(envfile.EnvSection(sid, f"{sid} (kept as it was)", entries))
    return envfile.render(plan.instance_id, GENERATOR, sections)
