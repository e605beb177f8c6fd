"""Resolution: from requested ids to an ordered list of deployable services, with reasons for the rest.

Pure and deterministic: dependency closure over ``requires``, stable dependency-first order, declared
conflicts (the later service is skipped, never both deployed), and skips that propagate to services
whose hard dependency is skipped. Platform infrastructure is the platform's and is never deployed.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from addonstack.catalog.loader import Catalog
from addonstack.catalog.model import POD_SECURITY_ORDER, PodSecurityLevel, Service
from addonstack.constants import INFRASTRUCTURE_IDS, LABEL_POD_SECURITY_ENFORCE
from addonstack.plan.models import SkippedService
from addonstack.reasons import SkipReason


@dataclass(frozen=True)
class ResolveRequest:
    """What resolution needs to know; built from the generate/update input or the CR spec."""

    services: Sequence[str]
    skill_packs: Sequence[str] = ()
    platform: str = "linux/amd64"
    gpu: bool = False
    prebuilt_images: Mapping[str, str] = field(default_factory=dict)
    # Keys already known per service: user credentials plus values issued earlier.
    known_values: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    allow_experimental: bool = False
    target: str = "compose"  # "compose" | "kubernetes": Docker-socket services run only under Compose
    allow_docker_socket: bool = False
    # False: a secret with neither a known value nor a generated one makes its service a skip.
    generate_secrets: bool = True
    # The Pod Security level the target namespace enforces (its label); None: unknown or not enforced.
    pod_security: PodSecurityLevel | None = None


@dataclass
class Resolution:
    services: list[Service]
    skipped: list[SkippedService]
    added_dependencies: list[str]
    packs: list[str]
    warnings: list[str]

    @property
    def ids(self) -> list[str]:
        return [s.id for s in self.services]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'n8n'?)`` for a near miss, else ""; never the whole list of ids."""
    close = difflib.get_close_matches(word.lower(), list(choices), n=2, cutoff=0.6)
    return f" (did you mean {' or '.join(repr(c) for c in close)}?)" if close else ""


def _dedupe(ids: Sequence[str], warnings: list[str], what: str) -> list[str]:
    seen: dict[str, None] = {}
    dupes: list[str] = []
    for sid in ids:
        if sid in seen:
            dupes.append(sid)
        seen.setdefault(sid, None)
    if dupes:
        warnings.append(f"Duplicate {what} ignored: {', '.join(sorted(set(dupes)))}")
    return list(seen)


def _is_platform(cat: Catalog, sid: str) -> bool:
    svc = cat.services.get(sid)
    return sid in INFRASTRUCTURE_IDS or (svc is not None and svc.platform_provided)


def _order(cat: Catalog, roots: list[str]) -> tuple[list[str], list[str]]:
    """Dependency-first DFS in request order; returns (order, auto-added ids)."""
    order: list[str] = []
    placed: set[str] = set()
    added: list[str] = []
    requested = set(roots)

    def place(sid: str, stack: tuple[str, ...]) -> None:
        if sid in placed or sid in stack:
            return
        svc = cat.services[sid]
        for dep in svc.requires:
            if dep in cat.services and not _is_platform(cat, dep):
                place(dep, (*stack, sid))
        placed.add(sid)
        order.append(sid)
        if sid not in requested:
            added.append(sid)

    for sid in roots:
        place(sid, ())
    return order, added


def _conflicts(a: Service, b: Service) -> bool:
    return b.id in a.conflicts or a.id in b.conflicts


def _maturity_skip(svc: Service, req: ResolveRequest) -> SkippedService | None:
    """Experimental entries and Docker-socket services are opt-in: they cannot work as offered by default."""
    if svc.maturity == "experimental" and not req.allow_experimental:
        why = f": {svc.maturity_note}" if svc.maturity_note else ""
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.EXPERIMENTAL,
            details=f"{svc.name} is experimental{why}; set allowExperimental: true to deploy it anyway",
        )
    if svc.docker_socket and req.target == "kubernetes":
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.DOCKER_SOCKET,
            details=f"{svc.name} drives containers through the Docker engine's socket, which Kubernetes "
            "pods do not get; run it with the Compose target",
        )
    if svc.docker_socket and not req.allow_docker_socket:
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.DOCKER_SOCKET,
            details=f"{svc.name} needs /var/run/docker.sock (control of the host's Docker engine); "
            "set allowDockerSocket: true to mount it",
        )
    return None


def pod_security_level(value: str | None) -> PodSecurityLevel | None:
    """A Pod Security level by name; None for no value or one PSA does not know."""
    return next((level for level in POD_SECURITY_ORDER if level == value), None)


def enforced_level(labels: Mapping[str, str] | None) -> PodSecurityLevel | None:
    """The Pod Security level a namespace's labels enforce; None without the label."""
    return pod_security_level((labels or {}).get(LABEL_POD_SECURITY_ENFORCE))


def _pod_security_skip(svc: Service, req: ResolveRequest) -> SkippedService | None:
    """A service whose image needs more than the namespace admits: its pods would be refused at every try."""
    if req.target != "kubernetes" or req.pod_security is None:
        return None
    need = svc.pod_security_level
    if POD_SECURITY_ORDER.index(need) >= POD_SECURITY_ORDER.index(req.pod_security):
        return None
    why = svc.pod_security.reason if svc.pod_security and svc.pod_security.reason else "its catalog entry declares none"
    return SkippedService(
        service_id=svc.id,
        reason=SkipReason.POD_SECURITY,
        details=f"the namespace label {LABEL_POD_SECURITY_ENFORCE}={req.pod_security} refuses its pods: "
        f"{svc.name} runs at Pod Security level {need} ({why.rstrip('.')}); deploy it in a namespace that "
        f"enforces {need}",
    )


def _skip_reason(svc: Service, req: ResolveRequest) -> SkippedService | None:
    if (skip := _maturity_skip(svc, req)) is not None:
        return skip
    if (skip := _pod_security_skip(svc, req)) is not None:
        return skip
    compose_builds = req.target == "compose" and svc.build is not None and svc.build.ref is not None
    if svc.needs_build and svc.id not in req.prebuilt_images and not compose_builds:
        repo = svc.build.repository if svc.build else "its source repository"
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.NO_IMAGE,
            details=f"{svc.name} has no published image; build it from {repo} and pass prebuiltImages.{svc.id}",
        )
    if svc.gpu == "required" and not req.gpu:
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.GPU_REQUIRED,
            details=f"{svc.name} needs an NVIDIA GPU; set gpu: true on a host that has one",
        )
    if req.platform not in svc.platforms and svc.id not in req.prebuilt_images:
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.PLATFORM_UNSUPPORTED,
            details=f"{svc.image_ref or svc.name} is published for {', '.join(svc.platforms)}, not {req.platform}",
        )
    known = req.known_values.get(svc.id, {})
    missing = [
        e.key
        for e in svc.env
        if not known.get(e.key)
        and ((e.credential and e.required) or (e.generate is not None and not req.generate_secrets))
    ]
    if missing:
        why = "" if req.generate_secrets else " (generateSecrets is false, so none is generated)"
        return SkippedService(
            service_id=svc.id,
            reason=SkipReason.MISSING_CREDENTIALS,
            details=f"{svc.name} needs {', '.join(missing)}{why}; supply them in credentials.{svc.id}",
            required_credentials=missing,
        )
    return None


def _needed(cat: Catalog, roots: Sequence[str], accepted: Sequence[Service]) -> set[str]:
    """Accepted ids reachable from an accepted requested service over ``requires``."""
    ok = {s.id for s in accepted}
    seen: set[str] = set()
    todo = [r for r in roots if r in ok]
    while todo:
        sid = todo.pop()
        if sid in seen:
            continue
        seen.add(sid)
        todo.extend(d for d in cat.services[sid].requires if d in ok)
    return seen


def _with_packs(cat: Catalog, req: ResolveRequest, requested: list[str], warnings: list[str]) -> list[str]:
    """The known skill packs asked for; their required services are appended to ``requested``."""
    packs: list[str] = []
    for pack_id in _dedupe(req.skill_packs, warnings, "skill packs"):
        pack = cat.packs.get(pack_id)
        if pack is None:
            warnings.append(
                f"Unknown skill pack {pack_id!r} ignored{did_you_mean(pack_id, cat.packs)}; see `addonstack packs list`"
            )
            continue
        packs.append(pack_id)
        extra = [s for s in pack.required_services if s not in requested]
        if extra:
            warnings.append(f"Skill pack {pack_id!r} adds {', '.join(extra)}")
            requested.extend(extra)
    return packs


def _roots(cat: Catalog, requested: list[str], skipped: list[SkippedService], warnings: list[str]) -> list[str]:
    """The requested catalog services; platform infrastructure is dropped, unknown ids are skipped."""
    infra = [sid for sid in requested if _is_platform(cat, sid)]
    if infra:
        warnings.append(
            f"Platform infrastructure is provided by the platform, not deployed as an addon: {', '.join(infra)}"
        )
    roots: list[str] = []
    for sid in requested:
        if sid in infra:
            continue
        if sid not in cat.services:
            skipped.append(
                SkippedService(
                    service_id=sid,
                    reason=SkipReason.UNKNOWN_SERVICE,
                    details=f"{sid!r} is not in the catalog{did_you_mean(sid, cat.services)}; "
                    "see `addonstack catalog list`",
                )
            )
            continue
        roots.append(sid)
    return roots


def _accept(
    cat: Catalog, req: ResolveRequest, order: list[str], skipped: list[SkippedService], warnings: list[str]
) -> tuple[list[Service], set[str]]:
    """(accepted services, skipped ids) in dependency order: each service is skipped for its own reason,
    a skipped dependency, or a conflict with one already accepted."""
    accepted: list[Service] = []
    accepted_ids: set[str] = set()
    ruled_out: set[str] = set()  # ids some accepted service declares a conflict with
    skipped_ids: set[str] = set()
    for sid in order:
        svc = cat.services[sid]
        skip = _skip_reason(svc, req)
        if skip is None:
            bad_dep = next((d for d in svc.requires if d in skipped_ids), None)
            if bad_dep is not None:
                skip = SkippedService(
                    service_id=sid,
                    reason=SkipReason.DEPENDENCY_SKIPPED,
                    details=f"{svc.name} requires {bad_dep}, which was skipped",
                )
        if skip is None:
            clash = svc.id in ruled_out or not accepted_ids.isdisjoint(svc.conflicts)
            rival = next((a for a in accepted if _conflicts(a, svc)), None) if clash else None
            if rival is not None:
                skip = SkippedService(
                    service_id=sid,
                    reason=SkipReason.CONFLICT,
                    details=f"{svc.name} conflicts with {rival.name}, which is already in the stack",
                )
                warnings.append(f"{sid} skipped: it conflicts with {rival.id}")
        if skip is not None:
            if skip.reason in (SkipReason.EXPERIMENTAL, SkipReason.DOCKER_SOCKET, SkipReason.POD_SECURITY):
                warnings.append(f"{sid} skipped: {skip.details}")
            skipped.append(skip)
            skipped_ids.add(sid)
            continue
        accepted.append(svc)
        accepted_ids.add(svc.id)
        ruled_out.update(svc.conflicts)
        for rec in svc.recommends:
            if rec not in order and not _is_platform(cat, rec):
                warnings.append(f"{sid} works best with {rec} (recommended, not added)")
    return accepted, skipped_ids


def resolve(cat: Catalog, req: ResolveRequest) -> Resolution:
    """Resolve a request against the catalog. Never raises for unknown or unusable ids: it skips."""
    warnings: list[str] = []
    skipped: list[SkippedService] = []
    requested = _dedupe(req.services, warnings, "services")
    packs = _with_packs(cat, req, requested, warnings)
    roots = _roots(cat, requested, skipped, warnings)
    order, added = _order(cat, roots)
    accepted, skipped_ids = _accept(cat, req, order, skipped, warnings)
    needed = _needed(cat, roots, accepted)
    orphans = [s.id for s in accepted if s.id not in needed]
    if orphans:
        # Dependencies pulled in only for services that were then skipped serve nobody.
        warnings.append(f"Not deployed: {', '.join(orphans)}, added only for skipped services")
        accepted = [s for s in accepted if s.id in needed]
    if not accepted:
        warnings.append("No service can be deployed; the stack is empty")
    return Resolution(
        services=accepted,
        skipped=skipped,
        added_dependencies=[a for a in added if a not in skipped_ids and a in needed],
        packs=packs,
        warnings=warnings,
    )
