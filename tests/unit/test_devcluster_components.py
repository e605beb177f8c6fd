"""The dev cluster's component table: what every cluster test and ``make demo`` start from.

Offline checks of the table itself (the cluster tier starts it for real in tests/cluster/test_devcluster.py):
one entry per binary, flags that bind loopback only and name the component's own port, and probes that
really ask the port they are given.
"""

from __future__ import annotations

import http.server
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from addonstack.devcluster import COMPONENTS, CertPair, Component, Pki, Probe
from addonstack.devcluster.binaries import BINARIES
from addonstack.devcluster.components import PORT_NAMES, Layout, Trust

PORTS = dict(zip(PORT_NAMES, range(30001, 30001 + len(PORT_NAMES)), strict=True))


def _layout(tmp: Path) -> Layout:
    pair = CertPair(tmp / "x.crt", tmp / "x.key")
    pki = Pki(tmp, pair, pair, pair, pair, tmp / "sa.key", tmp / "sa.pub")
    return Layout(ports=PORTS, pki=pki, data_dir=tmp / "etcd", kubeconfig=tmp / "kc", bin_dir=tmp / "bin")


def test_one_entry_per_binary_in_start_order() -> None:
    assert tuple(c.name for c in COMPONENTS) == BINARIES
    assert set(PORT_NAMES) == {*BINARIES, "etcd-peer"}


@pytest.mark.parametrize("comp", COMPONENTS, ids=lambda c: c.name)
def test_flags_bind_loopback_and_name_the_components_own_port(comp: Component, tmp_path: Path) -> None:
    flags = comp.flags(_layout(tmp_path))
    text = " ".join(flags)
    assert all(f.startswith("--") for f in flags), flags
    hosts = re.findall(r"://([^/:\s]+):\d+", text) + re.findall(r"(?:address|node-ip)=([^\s:]+)", text)
    assert hosts and set(hosts) == {"127.0.0.1"}, f"{comp.name} binds or advertises beyond loopback: {hosts}"
    used = {int(p) for p in re.findall(r"(?::|port=)(300\d\d)\b", text)}
    assert PORTS[comp.name] in used, f"{comp.name}'s flags do not name its port {PORTS[comp.name]}: {flags}"
    assert used <= set(PORTS.values())


class _Health(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = {"/healthz": b"ok", "/health": b'{"health":"true"}'}.get(self.path, b"not ready")
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_port() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def test_probes_ask_the_given_port_and_judge_the_answer(health_port: int, tmp_path: Path) -> None:
    pki = _layout(tmp_path).pki
    by_name = {c.name: c for c in COMPONENTS}
    assert by_name["kwok"].probe.ready(health_port, pki)() is True
    assert by_name["etcd"].probe.ready(health_port, pki)() is True
    assert Probe("/other", Trust.PLAIN).ready(health_port, pki)() is False
    with pytest.raises(OSError):
        by_name["kwok"].probe.ready(PORTS["kwok"], pki)()  # nothing listens there: refused


def test_apiserver_profiling_is_off_unless_asked(tmp_path: Path) -> None:
    """bench/operator.py --profile reads kube-apiserver's /debug/pprof; every other cluster keeps it off."""
    from dataclasses import replace

    apiserver = next(c for c in COMPONENTS if c.name == "kube-apiserver")
    lay = _layout(tmp_path)
    assert "--profiling=false" in apiserver.flags(lay)
    assert "--profiling=true" in apiserver.flags(replace(lay, profiling=True))
