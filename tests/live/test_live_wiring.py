"""Live wiring: real servers started with exactly the environment the Kubernetes renderer produced.

Each test renders a one-service AddonStack behind ``apps.example.com`` with TLS and the platform
database, prepares PostgreSQL with the rendered setup Job, starts the service's real program (installed
natively by tools/live/install.sh: npm, PyPI, Go modules) with the container's environment resolved from
the rendered ConfigMaps and Secrets, and requires the rendered readiness probe to answer 2xx. Where the
app tells users its address, the test also checks it uses the public URL its Ingress serves.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.figures import record
from tests.live.harness import (
    LIVE_DIR,
    PUBLIC_HOST,
    Netns,
    Rendered,
    postgres_in,
    process_env,
    render,
    run_setup_job,
)

pytestmark = [pytest.mark.live]


@dataclass(frozen=True)
class Program:
    """How the image starts the service, with the natively installed program instead of the image's."""

    binary: str  # under LIVE_DIR
    argv: Callable[[Path, Path], list[str]]  # (binary, data dir) -> argv
    extra_path: tuple[str, ...] = ()


PROGRAMS: dict[str, Program] = {
    # Image entrypoint: `tini -- /docker-entrypoint.sh` -> `n8n` (start); data in ~/.n8n.
    "n8n": Program("n8n/node_modules/.bin/n8n", lambda b, d: [str(b), "start"]),
    # Image CMD: `/usr/bin/miniflux`; configuration from the environment only.
    "miniflux": Program("gobin/miniflux.app", lambda b, d: [str(b)]),
    # Image CMD: `npm start --cache /data/.npm -- --userDir /data`.
    "node-red": Program("node-red/node_modules/.bin/node-red", lambda b, d: [str(b), "--userDir", str(d)]),
    # Image: `chroma run /config.yaml` with persist path /data and port 8000.
    "chromadb": Program(
        "pyenv/bin/chroma", lambda b, d: [str(b), "run", "--path", str(d), "--host", "0.0.0.0", "--port", "8000"]
    ),
    # The rendered command itself (`sh -c 'exec nats-server ... --store_dir /data ...'`), its volume at the data dir.
    "nats": Program("gobin/nats-server", lambda b, d: []),
    # Image CMD: `python ./changedetection.py -d /datastore` (PORT from the environment).
    "changedetection": Program("pyenv/bin/changedetection.io", lambda b, d: [str(b), "-d", str(d)]),
}


def _spec(service: str) -> dict[str, object]:
    return {
        "services": [service],
        "ingress": {"host": PUBLIC_HOST, "tlsSecretName": "apps-tls"},
        "database": {"host": "postgresql", "adminSecretRef": {"name": "pg-admin"}},
    }


def _rendered_command(rendered: Rendered, service: str, data: Path) -> list[str]:
    """The container's own command and args, with its volume's mount path moved to the data directory."""
    c = rendered.container(service)
    mount = c["volumeMounts"][0]["mountPath"]
    return [part.replace(mount, str(data)) for part in [*c.get("command", []), *c.get("args", [])]]


@dataclass
class Started:
    ns: Netns
    rendered: Rendered
    env: dict[str, str]
    port: int
    body: str


@pytest.fixture
def workdir() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="addonstack-live-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def _program(service: str) -> tuple[Program, Path]:
    prog = PROGRAMS[service]
    binary = LIVE_DIR / prog.binary
    if not binary.exists():
        pytest.fail(f"{binary} is missing: run `make live-tools` (tools/live/install.sh)", pytrace=False)
    return prog, binary


@pytest.fixture
def start(workdir: Path) -> Iterator[Callable[[str], Started]]:
    stack: list[Netns] = []

    def _start(service: str) -> Started:
        prog, binary = _program(service)
        rendered = render(_spec(service))
        hostnames = ["postgresql", "redis", service]
        ns = Netns(hostnames, workdir).__enter__()
        stack.append(ns)
        needs_db = any("-db-setup-" in j["metadata"]["name"] for j in rendered.of_kind("Job"))
        if needs_db:
            pg_bin = _enter(postgres_in(ns))
            out = run_setup_job(ns, rendered, pg_bin)
            assert "databases ready" in out, out
        data = workdir / "data"
        data.mkdir()
        env = process_env(rendered.env(service), workdir, [str(binary.parent)])
        argv = prog.argv(binary, data) or _rendered_command(rendered, service, data)
        proc = ns.start(service, argv, env, cwd=workdir)
        path, port = rendered.probe_path(service)
        status, body = ns.wait_http(f"http://{service}:{port}{path}", proc)
        record(f"live {service}: readiness probe {path} on :{port} answered {status}")
        return Started(ns, rendered, env, port, body)

    contexts: list[object] = []

    def _enter(cm: object) -> Path:
        contexts.append(cm)
        return cm.__enter__()  # type: ignore[attr-defined, no-any-return]

    yield _start
    for cm in reversed(contexts):
        cm.__exit__(None, None, None)  # type: ignore[attr-defined]
    for ns in reversed(stack):
        ns.__exit__(None, None, None)


def test_miniflux_uses_its_database_and_public_path(start: Callable[[str], Started]) -> None:
    s = start("miniflux")
    url = s.rendered.public_url("miniflux")
    assert s.env["BASE_URL"].rstrip("/") == url, "BASE_URL is not the address the Ingress serves"
    path = re.sub(r"^https?://[^/]+", "", url)
    status, body = s.ns.http_get(f"http://miniflux:{s.port}{path}/")
    assert status == 200, body[:300]
    assert f'href="{path}/' in body, "the login page does not link under the public path"


def test_n8n_uses_its_database_and_public_url(start: Callable[[str], Started]) -> None:
    s = start("n8n")
    url = s.rendered.public_url("n8n")
    deadline = time.monotonic() + 180
    status, body = s.ns.http_get(f"http://n8n:{s.port}/rest/settings")
    while not body.lstrip().startswith("{") and time.monotonic() < deadline:  # "n8n is starting up"
        time.sleep(2)
        status, body = s.ns.http_get(f"http://n8n:{s.port}/rest/settings")
    assert status == 200 and body.lstrip().startswith("{"), body[:300]
    assert s.env["WEBHOOK_URL"].rstrip("/") == url, "WEBHOOK_URL is not the address the Ingress serves"
    # Before login n8n publishes only public settings; its sign-in link is built from the editor base URL.
    settings = json.loads(body)["data"]
    assert settings["sso"]["oidc"]["loginUrl"] == f"{url}/rest/sso/oidc/login", settings["sso"]


def test_node_red_starts(start: Callable[[str], Started]) -> None:
    s = start("node-red")
    assert "Node-RED" in s.body


def test_chromadb_starts(start: Callable[[str], Started]) -> None:
    s = start("chromadb")
    assert "nanosecond heartbeat" in s.body


def test_nats_starts_with_the_rendered_command(start: Callable[[str], Started]) -> None:
    s = start("nats")
    assert json.loads(s.body) == {"status": "ok"}
    status, body = s.ns.http_get(f"http://nats:{s.port}/varz")
    assert status == 200 and json.loads(body)["auth_required"] is True, "the rendered token did not reach nats"


def test_changedetection_uses_its_public_url(start: Callable[[str], Started]) -> None:
    s = start("changedetection")
    url = s.rendered.public_url("changedetection")
    assert s.env["BASE_URL"].rstrip("/") == url, "BASE_URL is not the address the Ingress serves"
    # Notification links are built from BASE_URL; the settings page shows the value it took.
    status, body = s.ns.http_get(f"http://changedetection:{s.port}/settings")
    assert status == 200 and url in body, body[:300]
