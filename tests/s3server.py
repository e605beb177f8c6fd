"""A real S3-compatible server for tests: versitygw (POSIX backend) built from its Go module by
tools/s3/build.sh (`make s3server`, cached under ~/.cache/addonstack/s3server), listening on 127.0.0.1.

Tests that need it are marked ``s3``. A missing binary is a failure naming the command that builds it,
never a skip; set ADDONSTACK_S3_BUILD=1 to let the fixture build it (a cold build takes minutes).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BUILD = ROOT / "tools" / "s3" / "build.sh"


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    root: Path

    def env(self) -> dict[str, str]:
        return {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}


def binary() -> Path:
    """The cached versitygw binary; built here only when ADDONSTACK_S3_BUILD=1."""
    if os.environ.get("ADDONSTACK_S3_BUILD") == "1":
        out = subprocess.run(["bash", str(BUILD)], capture_output=True, text=True, check=False)
        if out.returncode != 0:
            pytest.fail(f"tools/s3/build.sh failed:\n{out.stderr[-3000:]}", pytrace=False)
        return Path(out.stdout.strip().splitlines()[-1])
    # The directory the build script uses is named by a hash of the wrapper module's files (as it computes it).
    digest = hashlib.sha256(b"".join((BUILD.parent / n).read_bytes() for n in ("go.mod", "go.sum", "tools.go")))
    path = Path(os.environ.get("S3SERVER_DIR", Path.home() / ".cache/addonstack/s3server" / digest.hexdigest()[:12]))
    path = path / "versitygw"
    if not path.is_file():
        pytest.fail(f"no S3 server at {path}: run `make s3server` (or set ADDONSTACK_S3_BUILD=1)", pytrace=False)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def s3_server() -> Iterator[S3Server]:
    exe = binary()
    with tempfile.TemporaryDirectory(prefix="addonstack-s3-") as tmp:
        data, meta = Path(tmp) / "data", Path(tmp) / "meta"
        data.mkdir()
        meta.mkdir()
        port = _free_port()
        access, secret = "test-" + secrets.token_hex(4), secrets.token_urlsafe(24)
        log = (Path(tmp) / "server.log").open("w")
        proc = subprocess.Popen(
            [str(exe), "--access", access, "--secret", secret, "--port", f"127.0.0.1:{port}",
             "posix", "--sidecar", str(meta), str(data)],
            stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            deadline = time.monotonic() + 30
            while True:
                with socket.socket() as s:
                    if s.connect_ex(("127.0.0.1", port)) == 0:
                        break
                if proc.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail(f"versitygw did not start:\n{(Path(tmp) / 'server.log').read_text()[-3000:]}")
                time.sleep(0.1)
            yield S3Server(f"http://127.0.0.1:{port}", access, secret, data)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            log.close()
