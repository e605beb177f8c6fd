"""Reverse-proxy helpers: a Caddy snippet and Traefik labels for HTTP routes and for stream (gRPC/TCP/UDP) ports.

HTTP routes (``proxyRoutes``, always with a path) become path or host routes. gRPC, TCP and UDP ports
(``streamRoutes``) are never routed as HTTP: Traefik gets TCP/UDP routers on an entry point of their own
per port; Caddy's standard build has no layer-4 proxy, so the Caddy helper writes what is needed (the
``caddy-l4`` module and a ``layer4`` block) as comments instead of a config that would not load.
"""

from __future__ import annotations

from collections.abc import Iterable

from addonstack.plan.models import ProxyRoute, StreamRoute


def caddy_snippet(routes: Iterable[ProxyRoute], streams: Iterable[StreamRoute] = ()) -> str:
    """Caddyfile directives to paste inside a site block; ``handle_path`` strips the prefix.

    A route on its own host becomes a ``host`` matcher, so the site block must also serve that name
    (a wildcard site such as ``*.box.example.com, box.example.com``)."""
    blocks = []
    for r in routes:
        if r.host is not None:
            matcher = "@" + r.service_id
            blocks.append(f"{matcher} host {r.host.split(':', 1)[0]}")
            blocks.append(f"handle {matcher} {{\n\treverse_proxy {r.service_id}:{r.port}\n}}")
            continue
        directive = "handle_path" if r.strip_prefix else "handle"
        blocks.append(f"{directive} {r.path}/* {{\n\treverse_proxy {r.service_id}:{r.port}\n}}")
        blocks.append(f"redir {r.path} {r.path}/ 308")
    streams = list(streams)
    if streams:
        blocks.append(
            "# Stream ports (not HTTP): Caddy needs the caddy-l4 module (xcaddy build --with "
            "github.com/mholt/caddy-l4)\n# and a global `layer4` block with one listener per port, for example:"
        )
        for st in streams:
            if st.protocol == "grpc":
                blocks.append(
                    f"# gRPC {st.service_id}:{st.port}: or an HTTP/2 site with `reverse_proxy h2c://{st.service_id}:{st.port}`"
                )
            listen = f"udp/:{st.host_port or st.port}" if st.protocol == "udp" else f":{st.host_port or st.port}"
            blocks.append(f"#   {listen} {{\n#     route {{\n#       proxy {st.service_id}:{st.port}\n#     }}\n#   }}")
    return "\n".join(blocks) + ("\n" if blocks else "")


def traefik_labels(route: ProxyRoute, entrypoint: str = "web") -> dict[str, str]:
    """Docker labels for one HTTP route (a StripPrefix middleware when the prefix is stripped)."""
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


def stream_entrypoint(stream: StreamRoute) -> str:
    """Name of the Traefik entry point a stream port needs (declare it with ``--entrypoints.<name>.address``)."""
    return f"{stream.service_id}-{stream.port}-{'udp' if stream.protocol == 'udp' else 'tcp'}"


def traefik_stream_labels(stream: StreamRoute) -> dict[str, str]:
    """Docker labels for one gRPC/TCP/UDP port: a TCP router (``HostSNI(`*`)``) or a UDP router on its own
    entry point (see :func:`stream_entrypoint`); gRPC goes over TCP unchanged."""
    name = f"addonstack-{stream.service_id}-{stream.port}"
    entry = stream_entrypoint(stream)
    if stream.protocol == "udp":
        return {
            "traefik.enable": "true",
            f"traefik.udp.routers.{name}.entrypoints": entry,
            f"traefik.udp.routers.{name}.service": name,
            f"traefik.udp.services.{name}.loadbalancer.server.port": str(stream.port),
        }
    return {
        "traefik.enable": "true",
        f"traefik.tcp.routers.{name}.rule": "HostSNI(`*`)",
        f"traefik.tcp.routers.{name}.entrypoints": entry,
        f"traefik.tcp.routers.{name}.service": name,
        f"traefik.tcp.services.{name}.loadbalancer.server.port": str(stream.port),
    }
