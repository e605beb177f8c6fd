"""CPU profiles of a burst, for finding where its CPU goes (``bench/operator.py --profile SECONDS``).

The bench's figures say how much CPU each process spent; these say on what. For each burst it records
kube-apiserver's CPU profile (Go's pprof, from ``/debug/pprof/profile``: the dev cluster serves it only when
started with ``profiling=True``) and, where a Python process is named, that process's stacks with py-spy
(raw "collapsed stacks" format, one line per stack and its sample count). Both start ``DELAY`` seconds into the
burst, past its first requests, and run in the background, so the burst itself is timed as usual (py-spy
samples from outside; the API server's profiler costs it a few per cent).

Read them with ``go tool pprof -top -cum kube-apiserver-<phase>.pprof`` and any collapsed-stacks viewer
(``flamegraph.pl``, speedscope) for ``<process>-<phase>.txt``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

from addonstack.devcluster.access import ssl_context
from addonstack.devcluster.pki import CertPair

DELAY = 10.0  # seconds into the burst before recording starts
RATE = 50  # py-spy samples per second


class BurstProfiles:
    """Background recorders for one run's bursts; :meth:`wait` joins them and names the files written."""

    def __init__(self, out_dir: Path, server: str, ca: Path, admin: CertPair, seconds: float) -> None:
        self.out_dir = out_dir
        self.server = server
        self.ctx = ssl_context(ca, admin)
        self.seconds = seconds
        self.threads: list[threading.Thread] = []
        self.written: list[Path] = []
        self.problems: list[str] = []
        out_dir.mkdir(parents=True, exist_ok=True)

    def start(self, phase: str, python: dict[str, int] | None = None) -> None:
        """Record kube-apiserver, and each of ``python`` (name -> pid) with py-spy, for this phase."""
        self._spawn(self._apiserver, phase)
        beside = Path(sys.executable).with_name("py-spy")  # a virtualenv's, when its bin/ is not on PATH
        spy = str(beside) if beside.exists() else shutil.which("py-spy")
        for name, pid in (python or {}).items():
            if spy is None:
                self.problems.append("py-spy is not installed (pip install -e '.[bench]'): no Python profiles")
                break
            self._spawn(self._python, phase, spy, name, pid)

    def moved(self, server: str, ca: Path, admin: CertPair) -> None:
        """The next bursts run on another cluster (``--between fresh``): what is recording finishes first."""
        self.wait()
        self.server = server
        self.ctx = ssl_context(ca, admin)

    def wait(self) -> list[Path]:
        for thread in self.threads:
            thread.join()
        self.threads.clear()
        return self.written

    def _spawn(self, target: Callable[..., None], *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _apiserver(self, phase: str) -> None:
        time.sleep(DELAY)
        url = f"{self.server}/debug/pprof/profile?seconds={int(self.seconds)}"
        opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=self.ctx)
        )
        out = self.out_dir / f"kube-apiserver-{phase}.pprof"
        try:
            with opener.open(url, timeout=self.seconds + 30) as resp:
                out.write_bytes(resp.read())
        except OSError as exc:  # 404: the cluster was started without profiling
            self.problems.append(f"kube-apiserver profile of the {phase} burst: {exc}")
            return
        self.written.append(out)

    def _python(self, phase: str, spy: str, name: str, pid: int) -> None:
        time.sleep(DELAY)
        out = self.out_dir / f"{name}-{phase}.txt"
        seconds = str(int(self.seconds))
        cmd = [spy, "record", "-p", str(pid), "-d", seconds, "-r", str(RATE), "-f", "raw", "-o", str(out)]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0 or not out.exists():
            self.problems.append(f"py-spy of {name} in the {phase} burst: {done.stderr.strip()[-200:]}")
            return
        self.written.append(out)
