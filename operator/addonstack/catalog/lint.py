"""Cross-file catalog checks that a per-file schema cannot express.

Each check returns plain messages prefixed with the offending file; an empty list means the catalog
is consistent. The test suite runs :func:`lint` with no exceptions list.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from addonstack.catalog.model import COMMAND_VAR, PUBLIC_URL_PLACEHOLDERS, Catalog, PodSecurity, Service
from addonstack.constants import PLATFORM_ENV_KEYS


def _where(cat: Catalog, kind: str, item_id: str) -> str:
    return cat.sources.get(f"{kind}:{item_id}", f"{kind} {item_id}")


def _routed(svc: Service) -> bool:
    """Has an exposed HTTP port: a proxy or Ingress may route it."""
    return any(p.protocol == "http" and p.exposed for p in svc.ports)


def _service_refs(cat: Catalog, svc: Service) -> Iterator[str]:
    where = _where(cat, "service", svc.id)
    if svc.category not in cat.categories:
        yield f"{where}: category: unknown category {svc.category!r}"
    for field in ("requires", "recommends", "conflicts"):
        for ref in getattr(svc, field):
            if ref not in cat.services:
                yield f"{where}: {field}: unknown service {ref!r}"
            if ref == svc.id:
                yield f"{where}: {field}: a service cannot name itself"
    for i, skill in enumerate(svc.skills):
        if skill.skill_id not in cat.skills:
            yield f"{where}: skills.{i}.skillId: unknown skill {skill.skill_id!r}"


def _service_env(cat: Catalog, svc: Service) -> Iterator[str]:
    where = _where(cat, "service", svc.id)
    seen: set[str] = set()
    for i, var in enumerate(svc.env):
        if var.key in seen:
            yield f"{where}: env.{i}.key: duplicate variable {var.key!r}"
        seen.add(var.key)
    keys = {v.key for v in svc.env}
    for i, var in enumerate(svc.env):
        for other, key in var.references():
            if not other:
                if key not in keys and key not in PLATFORM_ENV_KEYS:
                    yield (
                        f"{where}: env.{i}.default: ${{{key}}} is neither a variable of {svc.id!r} nor a platform key"
                    )
                continue
            dep = cat.services.get(other)
            if other not in svc.requires or dep is None:
                yield f"{where}: env.{i}.default: ${{{other}.{key}}} names a service not in requires"
            elif dep.env_var(key) is None:
                yield f"{where}: env.{i}.default: {other!r} has no variable {key!r}"
        if var.secret and var.generate is None and not var.credential and var.default is None:
            yield (
                f"{where}: env.{i}: secret {var.key!r} has no default, no generate rule and is not "
                "a credential, so it would always be empty"
            )


def _plain_var_problem(svc: Service, key: str, in_container: bool = True) -> str | None:
    """Why ``key`` cannot be substituted into a command line or a probe path, or None."""
    var = svc.env_var(key)
    if var is None:
        return f"is not a variable of {svc.id!r} (a shell variable is written $KEY, without braces)"
    if var.secret:
        return "is secret; any process can read a command line, let the program read it from env"
    if in_container and not var.in_container:
        return "has inContainer: false; Kubernetes expands only the container's own variables"
    if var.default is None:
        return "has no default, so the item would be empty until someone sets it; give a default"
    return None


def _service_command(cat: Catalog, svc: Service) -> Iterator[str]:
    """``${KEY}`` in command, args, initCommand or composeTest names a plain variable of the entry with a value;
    a health check's ``basePathVar`` is one too, and the Compose test follows it."""
    where = _where(cat, "service", svc.id)
    hc = svc.health_check
    fields = (
        ("command", svc.command),
        ("args", svc.args),
        ("initCommand", svc.init_command),
        ("healthCheck.composeTest", hc.compose_test if hc else None),
    )
    for field, items in fields:
        for i, text in enumerate(items or []):
            for key in COMMAND_VAR.findall(text):
                if (problem := _plain_var_problem(svc, key)) is not None:
                    yield f"{where}: {field}.{i}: ${{{key}}} {problem}"
    key = hc.http.base_path_var if hc is not None and hc.http is not None else None
    if key is None or hc is None:
        return
    if (problem := _plain_var_problem(svc, key, in_container=False)) is not None:
        yield f"{where}: healthCheck.http.basePathVar: {key!r} {problem}"
    if hc.compose_test and not any(f"${{{key}}}" in t for t in hc.compose_test):
        yield (
            f"{where}: healthCheck.composeTest: the probe path moves under ${{{key}}} on Kubernetes; "
            f"put ${{{key}}} before the path in the Compose test too"
        )
    if svc.public_url is None or not svc.public_url.sub_path:
        yield f"{where}: healthCheck.http.basePathVar: set, but publicUrl.subPath is not true, so no prefix is passed"


def _service_ports(cat: Catalog, svc: Service) -> Iterator[str]:
    where = _where(cat, "service", svc.id)
    containers = [p.container for p in svc.ports]
    for port in sorted({p for p in containers if containers.count(p) > 1}):
        yield f"{where}: ports: container port {port} is listed twice"
    hosts = [p.default_host for p in svc.ports]
    for port in sorted({p for p in hosts if hosts.count(p) > 1}):
        yield f"{where}: ports: host port {port} is listed twice"
    names = [p.name for p in svc.ports if p.name]
    for name in sorted({n for n in names if names.count(n) > 1}):
        yield f"{where}: ports: port name {name!r} is listed twice"
    hc = svc.health_check
    if hc is not None:
        checked: int | None = hc.http.port if hc.http else hc.tcp.port if hc.tcp else None
        if checked is not None and checked not in containers:
            yield f"{where}: healthCheck: port {checked} is not one of the service's container ports"
    if svc.proxy_path and not _routed(svc):
        yield f"{where}: proxyPath: set, but the service has no exposed HTTP port"
    vols = [v.name for v in svc.volumes]
    for name in sorted({n for n in vols if vols.count(n) > 1}):
        yield f"{where}: volumes: volume {name!r} is listed twice"


def _service_postgres(cat: Catalog, svc: Service) -> Iterator[str]:
    where = _where(cat, "service", svc.id)
    needs = "postgresql" in svc.requires
    if needs and svc.postgres is None:
        yield f"{where}: postgres: requires postgresql but names no database, role and passwordVar"
    if svc.postgres is not None:
        if not needs:
            yield f"{where}: requires: has a postgres block but does not require postgresql"
        var = svc.env_var(svc.postgres.password_var)
        if var is None:
            yield f"{where}: postgres.passwordVar: {svc.postgres.password_var!r} is not an env variable"
        elif not (var.secret and var.generate is not None):
            yield f"{where}: postgres.passwordVar: {var.key!r} must be a generated secret"


_PLACEHOLDER = re.compile(r"\$\{([^}]*)\}")


def unknown_placeholders(template: str) -> list[str]:
    """Placeholders in a public-URL template that the planner does not fill."""
    return [m.group(1) for m in _PLACEHOLDER.finditer(template) if m.group(1) not in PUBLIC_URL_PLACEHOLDERS]


def _service_public_url(cat: Catalog, svc: Service) -> Iterator[str]:
    if svc.public_url is None:
        return
    where = _where(cat, "service", svc.id)
    for i, var in enumerate(svc.public_url.env):
        if svc.env_var(var.key) is None:
            yield f"{where}: publicUrl.env.{i}.key: {var.key!r} is not declared in env (declare it with its default)"
        for name in unknown_placeholders(var.value):
            yield (
                f"{where}: publicUrl.env.{i}.value: ${{{name}}} is not a public-URL placeholder "
                f"(use {', '.join('${' + p + '}' for p in PUBLIC_URL_PLACEHOLDERS)})"
            )
        if var.of is not None:
            yield from _public_url_of(cat, svc, f"{where}: publicUrl.env.{i}.of", var.of)
    own = [v for v in svc.public_url.env if v.of is None]
    if own and not _routed(svc):
        yield f"{where}: publicUrl: set, but the service has no exposed HTTP port, so it is never routed"


def _public_url_of(cat: Catalog, svc: Service, where: str, of: str) -> Iterator[str]:
    """``of`` names a routed web service this entry belongs with: one it requires, or one requiring it."""
    other = cat.services.get(of)
    if other is None:
        yield f"{where}: unknown service {of!r}"
    elif of == svc.id:
        yield f"{where}: names the entry itself; leave out 'of' for its own address"
    elif of not in svc.requires and svc.id not in other.requires:
        yield (
            f"{where}: {of!r} neither is required by {svc.id!r} nor requires it; "
            f"a variable may only take the address of a service deployed with this one"
        )
    elif not _routed(other):
        yield f"{where}: {of!r} has no exposed HTTP port, so it never has a public address"


# Capabilities each Pod Security level admits beyond none (restricted: only NET_BIND_SERVICE; baseline: the
# container runtime's default set). Anything else makes the entry privileged.
PRIVILEGED_PORTS_END = 1024  # the kernel's default net.ipv4.ip_unprivileged_port_start
RESTRICTED_CAPABILITIES = frozenset({"NET_BIND_SERVICE"})
BASELINE_CAPABILITIES = frozenset(
    {"AUDIT_WRITE", "CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "KILL", "MKNOD", "NET_BIND_SERVICE", "SETFCAP",
     "SETGID", "SETPCAP", "SETUID", "SYS_CHROOT"}
)  # fmt: skip


def _service_pod_security(cat: Catalog, svc: Service) -> Iterator[str]:
    """``podSecurity`` is declared and matches what the level admits (the reason itself the model requires)."""
    if svc.platform_provided:
        return
    where = _where(cat, "service", svc.id)
    ps = svc.pod_security
    if ps is None:
        yield (
            f"{where}: podSecurity: declare the strictest Pod Security level the image runs under "
            "(restricted, or baseline with a reason from upstream evidence)"
        )
        return
    caps = set(ps.add_capabilities)
    if ps.level == "restricted":
        if not svc.run_as_user:
            yield f"{where}: runAsUser: a restricted entry names the non-root UID it runs as (the image's USER)"
        if extra := sorted(caps - RESTRICTED_CAPABILITIES):
            yield f"{where}: podSecurity.addCapabilities: restricted admits only NET_BIND_SERVICE, not {extra}"
    elif ps.level == "baseline" and (extra := sorted(caps - BASELINE_CAPABILITIES)):
        yield f"{where}: podSecurity.addCapabilities: {extra} need level privileged, not baseline"
    yield from _low_ports(where, svc, ps)


def _low_ports(where: str, svc: Service, ps: PodSecurity) -> Iterator[str]:
    """A non-root server listening below 1024 needs ``unprivilegedPortStart`` at or below its lowest port."""
    low = min((p.container for p in svc.ports if p.container < PRIVILEGED_PORTS_END), default=None)
    start = ps.unprivileged_port_start
    if start is not None and low is None:
        yield f"{where}: podSecurity.unprivilegedPortStart: no port below {PRIVILEGED_PORTS_END}; leave the field out"
    elif start is not None and low is not None and start > low:
        yield f"{where}: podSecurity.unprivilegedPortStart: {start} is above its port {low}; give {low}"
    elif start is None and low is not None and ps.level == "restricted" and svc.run_as_user:
        yield (
            f"{where}: podSecurity.unprivilegedPortStart: the non-root user {svc.run_as_user} cannot bind port "
            f"{low}; set it to {low} (the pod sysctl net.ipv4.ip_unprivileged_port_start)"
        )


# The truth rules (pinned builds, sources + verified, maturityNote, what a deployable entry may lean on) hold for
# every entry since the truth pass; ``lint(cat, truth_everywhere=False)`` checks only entries that carry ``verified``.
TRUTH_RULES_FOR_ALL = True


def offered_by_default(cat: Catalog, svc: Service) -> bool:
    """Deployed without an opt-in: not experimental, no Docker socket, and so is everything it requires."""
    seen: set[str] = set()
    todo = [svc.id]
    while todo:
        sid = todo.pop()
        if sid in seen or sid not in cat.services:
            continue
        seen.add(sid)
        dep = cat.services[sid]
        if dep.platform_provided:
            continue
        if dep.maturity == "experimental" or dep.docker_socket:
            return False
        todo.extend(dep.requires)
    return True


def _service_truth(cat: Catalog, svc: Service, everywhere: bool) -> Iterator[str]:
    if svc.platform_provided or not (everywhere or svc.verified is not None):
        return
    where = _where(cat, "service", svc.id)
    # Experimental entries may lack one (e.g. no Dockerfile upstream): Compose builds only pinned refs anyway.
    if svc.build is not None and not svc.build.ref and svc.maturity != "experimental":
        yield f"{where}: build.ref: pin the build to a git tag or commit so it is reproducible"
    if svc.maturity in ("stable", "beta"):
        if not svc.sources:
            yield f"{where}: sources: a {svc.maturity} entry lists the upstream files it was verified against"
        if svc.verified is None:
            yield f"{where}: verified: a {svc.maturity} entry records when it was verified (YYYY-MM-DD)"
        for dep in svc.requires:
            other = cat.services.get(dep)
            if other is not None and not other.platform_provided and other.maturity == "experimental":
                yield (
                    f"{where}: requires: {dep!r} is experimental, so it is skipped by default and this "
                    f"{svc.maturity} entry with it; make it experimental too or fix {dep!r}"
                )
    if svc.maturity in ("beta", "experimental") and not svc.maturity_note:
        yield f"{where}: maturityNote: a {svc.maturity} entry states its known limits or what it lacks"
    if svc.maturity == "stable" and svc.docker_socket:
        yield (
            f"{where}: maturity: an entry that needs the Docker socket cannot be stable (Kubernetes skips it): "
            "beta with the limit in maturityNote, or experimental"
        )


def _cycles(cat: Catalog) -> Iterator[str]:
    state: dict[str, int] = {}

    def visit(sid: str, path: list[str]) -> Iterator[str]:
        state[sid] = 1
        svc = cat.services.get(sid)
        for dep in svc.requires if svc else []:
            if state.get(dep) == 1:
                cycle = [*path[path.index(dep) :], dep] if dep in path else [sid, dep]
                yield f"{_where(cat, 'service', sid)}: requires: dependency cycle {' -> '.join(cycle)}"
            elif dep not in state:
                yield from visit(dep, [*path, dep])
        state[sid] = 2

    for sid in sorted(cat.services):
        if sid not in state:
            yield from visit(sid, [sid])


def _packs_and_skills(cat: Catalog) -> Iterator[str]:
    for pack in cat.packs.values():
        where = _where(cat, "pack", pack.id)
        # A pack resting wholly on opt-in services is itself opt-in (resolve names the opt-in); a mixed one
        # would install half of itself by default.
        required = [cat.services[r] for r in pack.required_services if r in cat.services]
        skipped = [s.id for s in required if not offered_by_default(cat, s)]
        half = set(skipped) if len(skipped) < len(pack.required_services) else set()
        for field, refs in (
            ("requiredServices", pack.required_services),
            ("optionalServices", pack.optional_services),
        ):
            for ref in refs:
                svc = cat.services.get(ref)
                if svc is None:
                    yield f"{where}: {field}: unknown service {ref!r}"
                elif svc.platform_provided and field == "requiredServices":
                    yield f"{where}: {field}: {ref!r} is platform infrastructure, not an addon"
                elif field == "requiredServices" and ref in half:
                    yield (
                        f"{where}: {field}: {ref!r} is skipped by default (experimental or Docker socket, "
                        "itself or a service it requires), so a default install would get only part of the "
                        "pack; list it in optionalServices"
                    )
        for ref in pack.skills:
            if ref not in cat.skills:
                yield f"{where}: skills: unknown skill {ref!r}"
    for skill in cat.skills.values():
        where = _where(cat, "skill", skill.id)
        for ref in skill.services:
            if ref not in cat.services:
                yield f"{where}: services: unknown service {ref!r}"
        names = [t.name for t in skill.tools]
        for name in sorted({n for n in names if names.count(n) > 1}):
            yield f"{where}: tools: tool {name!r} is listed twice"
        for i, tool in enumerate(skill.tools):
            if tool.input_schema.get("type") != "object":
                yield f"{where}: tools.{i}.inputSchema: the top level must be type: object"


def _shared_databases(cat: Catalog) -> Iterator[str]:
    """One database and role per catalog entry: two entries issuing passwords for one role would race."""
    for field in ("database", "role"):
        seen: dict[str, str] = {}
        for svc in cat.services.values():
            if svc.postgres is None:
                continue
            value = getattr(svc.postgres, field)
            if value in seen:
                yield (
                    f"{_where(cat, 'service', svc.id)}: postgres.{field}: {value!r} is already used by "
                    f"{seen[value]}; share it by referencing ${{{seen[value]}.<VAR>}} instead of a postgres block"
                )
            seen.setdefault(value, svc.id)


def lint(cat: Catalog, truth_everywhere: bool | None = None) -> list[str]:
    """Every cross-reference and consistency problem in the catalog.

    ``truth_everywhere`` applies the truth rules to unverified entries too (default: ``TRUTH_RULES_FOR_ALL``).
    """
    everywhere = TRUTH_RULES_FOR_ALL if truth_everywhere is None else truth_everywhere
    problems: list[str] = []
    for svc in cat.services.values():
        for check in (
            _service_refs,
            _service_env,
            _service_command,
            _service_ports,
            _service_postgres,
            _service_public_url,
            _service_pod_security,
        ):
            problems.extend(check(cat, svc))
        problems.extend(_service_truth(cat, svc, everywhere))
    problems.extend(_cycles(cat))
    problems.extend(_shared_databases(cat))
    problems.extend(_packs_and_skills(cat))
    return problems
