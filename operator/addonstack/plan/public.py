"""Routes and public addresses: where each web service is served, and the URL it is told.

Apps build absolute links, redirects, OAuth callbacks, webhook URLs and CSRF origins from a configured
public URL; told their in-cluster name (``http://gitea:3000``) they break behind a real domain. The
planner decides every route here, once, from ``spec.ingress`` (Kubernetes) or ``publicBaseUrl``
(Compose, library): the Ingress and proxy rules follow the same routes, so the URL an app is told is
the URL it is served at. An app that can live under a path prefix (``publicUrl.subPath``) gets the prefix
passed through and is told it; any other is routed on its own host ``<service>.<host>``. Without a public
address nothing is known about the outside, so the catalog defaults stay and prefixes are stripped.
A worker that is never routed but writes the links of the web app it serves (``publicUrl.env[].of``)
is told that app's address, so emails from the worker and pages from the app agree.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from addonstack.catalog.model import Service

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_BASE_URL = re.compile(r"^(https?)://([^/]+)(/.*)?$")


@dataclass(frozen=True)
class Route:
    """A port a proxy may reach. HTTP routes have a ``path`` (and ``host`` when on their own host); gRPC,
    TCP and UDP ports have none. The library splits them into ``proxyRoutes`` and ``streamRoutes``."""

    service_id: str
    path: str | None
    port: int
    protocol: str
    strip_prefix: bool
    host: str | None = None


@dataclass(frozen=True)
class Routing:
    """How HTTP routes are exposed. ``host`` None: no public address is known."""

    scheme: str = "http"
    host: str | None = None
    path_prefix: str = ""  # no trailing slash, "" for none
    own_hosts: bool = False  # every service on <service>.<host> (perServiceHosts, or a wildcard host)

    @classmethod
    def from_base_url(cls, url: str | None) -> Routing:
        """From the library's ``publicBaseUrl`` (already checked against its pattern)."""
        m = _BASE_URL.match(url or "")
        if m is None:
            return cls()
        return cls(scheme=m.group(1), host=m.group(2), path_prefix=(m.group(3) or "").rstrip("/"))

    @classmethod
    def from_ingress(cls, host: str | None, path_prefix: str | None, per_service_hosts: bool, tls: bool) -> Routing:
        """From ``spec.ingress``: a wildcard host (``*.apps.example.com``) means a host per service."""
        wildcard = bool(host and host.startswith("*."))
        return cls(
            scheme="https" if tls else "http",
            host=host.removeprefix("*.") if host else None,
            path_prefix=(path_prefix or "").rstrip("/"),
            own_hosts=bool(host) and (per_service_hosts or wildcard),
        )


@dataclass(frozen=True)
class PublicAddress:
    """The address a service is served at: ``scheme://host`` plus ``path`` ("" on its own host)."""

    scheme: str
    host: str
    path: str

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}"

    @property
    def url(self) -> str:
        return f"{self.origin}{self.path}"

    def fill(self, template: str) -> str:
        """A ``publicUrl.env`` template with its placeholders replaced (the lint rejects any other)."""
        values = {
            "PUBLIC_URL": self.url,
            "PUBLIC_ORIGIN": self.origin,
            "PUBLIC_HOST": self.host,
            "PUBLIC_PATH": self.path,
            "PUBLIC_SCHEME": self.scheme,
        }
        return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def sub_path_ok(svc: Service) -> bool:
    return svc.public_url is not None and svc.public_url.sub_path


class _Planned(Protocol):
    @property
    def service(self) -> Service: ...


def plan_routes(
    services: Sequence[_Planned], routing: Routing, warnings: list[str]
) -> tuple[list[Route], dict[str, PublicAddress]]:
    """Every route of the stack, and the public address of each routed web service."""
    routes: list[Route] = []
    public: dict[str, PublicAddress] = {}
    for p in services:
        svc = p.service
        http_done = False
        for port in svc.ports:
            if not port.exposed:
                continue
            if port.protocol != "http":
                routes.append(
                    Route(service_id=svc.id, path=None, port=port.container, protocol=port.protocol, strip_prefix=False)
                )
                continue
            if http_done:
                continue
            http_done = True
            route, address = _http_route(svc, port.container, routing, warnings)
            routes.append(route)
            if address is not None:
                public[svc.id] = address
    return routes, public


def _http_route(svc: Service, port: int, routing: Routing, warnings: list[str]) -> tuple[Route, PublicAddress | None]:
    path = f"{routing.path_prefix}{svc.proxy_path or f'/{svc.id}'}"
    if routing.host is None:
        return Route(service_id=svc.id, path=path, port=port, protocol="http", strip_prefix=True), None
    if routing.own_hosts or not sub_path_ok(svc):
        host = f"{svc.id}.{routing.host}"
        if not routing.own_hosts:
            warnings.append(
                f"{svc.id}: cannot be served under a path, so it is routed on its own host: point the DNS name "
                f"{host.split(':', 1)[0]} (or a wildcard *.{routing.host.split(':', 1)[0]}) at the ingress"
            )
        route = Route(service_id=svc.id, path="/", port=port, protocol="http", strip_prefix=False, host=host)
        return route, PublicAddress(routing.scheme, host, "")
    route = Route(service_id=svc.id, path=path, port=port, protocol="http", strip_prefix=False)
    return route, PublicAddress(routing.scheme, routing.host, path)


def public_values(svc: Service, public: Mapping[str, PublicAddress]) -> Mapping[str, str]:
    """The public-URL variables of a service, each filled from the address it names: the service's own, or
    with ``of`` the address of the service it serves. A variable whose address is unknown (no public
    address, or that service not routed in this stack) is left out, so its catalog default stays."""
    if svc.public_url is None:
        return {}
    out: dict[str, str] = {}
    for var in svc.public_url.env:
        address = public.get(var.of or svc.id)
        if address is not None:
            out[var.key] = address.fill(var.value)
    return out
