"""Host-port allocation for the Compose target.

Each exposed port keeps its default host port unless that port is reserved, used by a service already
on the host, or taken earlier in this stack; then it moves to default+1000 and up by one until free.
Nothing goes above 65535: the search wraps to the unprivileged range and says so. Explicit overrides
win but must not clash; ports of services that stay in an update never move.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from addonstack.catalog.model import Service

WRAP_START = 10000
MAX_PORT = 65535


class PortError(ValueError):
    """An explicit port override clashes with a reserved or already used port."""


@dataclass(frozen=True)
class PortAssignment:
    service_id: str
    container: int
    host: int

    @property
    def key(self) -> str:
        return f"{self.service_id}:{self.container}"


def _next_free(start: int, used: set[int], warnings: list[str], what: str) -> int:
    port = start
    wrapped = False
    while port in used or port > MAX_PORT:
        port += 1
        if port > MAX_PORT:
            if wrapped:
                raise PortError(f"{what}: no free host port left")
            wrapped = True
            port = WRAP_START
    if wrapped:
        warnings.append(f"{what}: ports above {start - 1} were all taken or out of range; wrapped to {port}")
    return port


def allocate_ports(
    services: Iterable[Service],
    reserved: Iterable[int],
    used_by_host: Iterable[int],
    overrides: Mapping[str, Mapping[str, int]],
    existing: Mapping[str, int],
    warnings: list[str],
) -> list[PortAssignment]:
    """Assign host ports to every exposed port, in service order."""
    services = list(services)
    used: set[int] = set(reserved) | set(used_by_host)
    out: list[PortAssignment] = []
    # First pass: explicit overrides and ports that must not move.
    fixed: dict[str, int] = {}
    for svc in services:
        for port in svc.ports:
            if not port.exposed:
                continue
            key = f"{svc.id}:{port.container}"
            override = overrides.get(svc.id, {}).get(str(port.default_host))
            if override is not None:
                if override in used or override in fixed.values():
                    raise PortError(
                        f"portOverrides.{svc.id}.{port.default_host}: host port {override} is reserved or "
                        "already used; choose a free port"
                    )
                fixed[key] = override
            elif key in existing:
                fixed[key] = existing[key]
    used |= set(fixed.values())
    for svc in services:
        for port in svc.ports:
            if not port.exposed:
                continue
            key = f"{svc.id}:{port.container}"
            if key in fixed:
                host = fixed[key]
            elif port.default_host not in used:
                host = port.default_host
            else:
                host = _next_free(port.default_host + 1000, used, warnings, f"{svc.id} port {port.container}")
            used.add(host)
            out.append(PortAssignment(svc.id, port.container, host))
    for sid, mapping in overrides.items():
        known = {str(p.default_host) for s in services if s.id == sid for p in s.ports if p.exposed}
        for key in mapping:
            if key not in known:
                warnings.append(f"portOverrides.{sid}.{key}: no exposed port with that default in this stack; ignored")
    return out
