"""How we talk to the control plane before any client library is set up: TLS contexts, plain HTTP(S)
requests on loopback, and the kubeconfig we hand to components, tests and users.

urllib rather than lightkube: the dev cluster is also used by the benchmarks of the client libraries,
and the readiness probes must work before a kubeconfig exists.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from addonstack.devcluster.pki import CertPair


def ssl_context(ca: Path, client: CertPair | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(ca))
    if client is not None:
        ctx.load_cert_chain(str(client.cert), str(client.key))
    return ctx


def request(url: str, ctx: ssl.SSLContext | None = None, method: str = "GET", body: Any = None) -> str:
    # No proxies: everything here is on loopback, whatever http_proxy says.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=ctx))
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    with opener.open(req, timeout=5) as resp:
        text: str = resp.read().decode()
        return text


def kubeconfig_yaml(server: str, ca: Path, client: CertPair, user: str) -> str:
    """A self-contained kubeconfig (certificates embedded) for ``user``."""

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "addonstack-dev",
                    "cluster": {"server": server, "certificate-authority-data": b64(ca)},
                }
            ],
            "users": [
                {
                    "name": user,
                    "user": {"client-certificate-data": b64(client.cert), "client-key-data": b64(client.key)},
                }
            ],
            "contexts": [{"name": "addonstack-dev", "context": {"cluster": "addonstack-dev", "user": user}}],
            "current-context": "addonstack-dev",
        },
        sort_keys=False,
    )


def write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by its owner only (a kubeconfig carries a client key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
