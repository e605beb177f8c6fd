"""Reverse-proxy helpers for proxy routes: a Caddy snippet and Traefik labels.

Only HTTP routes become proxy rules; gRPC, TCP and UDP ports are left to the platform (they are
reported with their protocol so nobody routes MQTT as HTTP).
"""

from __future__ import annotations

from collections.abc import Iterable

from addonstack.plan.models import ProxyRoute


def caddy_snippet(routes: Iterable[ProxyRoute]) -> str:
    """Caddyfile directives to paste inside a site block; ``handle_path`` strips the prefix.

    A route on its own host becomes a ``host`` matcher, so the site block must also serve that name
    (a wildcard site such as ``*.box.example.com, box.example.com``)."""
    blocks = []
    for r in routes:
        if r.protocol != "http" or r.path is None:
            continue
        if r.host is not None:
            matcher = "@" + r.service_id
            blocks.append(f"{matcher} host {r.host.split(':', 1)[0]}")
            blocks.append(f"handle {matcher} {{\n\treverse_proxy {r.service_id}:{r.port}\n}}")
            continue
        directive = "handle_path" if r.strip_prefix else "handle"
        blocks.append(f"{directive} {r.path}/* {{\n\treverse_proxy {r.service_id}:{r.port}\n}}")
        blocks.append(f"redir {r.path} {r.path}/ 308")
    return "\n".join(blocks) + ("\n" if blocks else "")


def traefik_labels(route: ProxyRoute, entrypoint: str = "web") -> dict[str, str]:
    """Docker labels for one HTTP route (a StripPrefix middleware when the prefix is stripped)."""
    if route.protocol != "http" or route.path is None:
        return {}
    name = f"addonstack-{route.service_id}"
    rule = f"Host(`{route.host.split(':', 1)[0]}`)" if route.host else f"PathPrefix(`{route.path}`)"
    labels = {
        "traefik.enable": "true",
        f"traefik.http.routers.{name}.rule": rule,
        f"traefik.http.routers.{name}.entrypoints": entrypoint,
        f"traefik.http.services.{name}.loadbalancer.server.port": str(route.port),
    }
    if route.strip_prefix:
        labels[f"traefik.http.middlewares.{name}-strip.stripprefix.prefixes"] = route.path
        labels[f"traefik.http.routers.{name}.middlewares"] = f"{name}-strip"
    return labels
