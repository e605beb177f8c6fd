"""The operator as a separate process (``addonstack operator run``), so tests can SIGKILL and restart it.

Its output goes to a log file (read back for "started" and for failure messages); settings come from the
ADDONSTACK_* environment variables, as in a Deployment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from tests.cluster.operator_harness import TEST_DEFAULTS

STARTED = "addonstack operator started"


class OperatorProcess:
    """One operator at a time, restartable; every run appends to ``log``."""

    def __init__(
        self,
        kubeconfig: Path,
        log: Path,
        namespaces: Sequence[str],
        drift_interval: float = 3.0,
        deletion_policy: str = "Retain",
        verbose: bool = False,
    ) -> None:
        self.log = log
        self.args = ["operator", "run", *(["--verbose"] if verbose else [])]  # verbose: every HTTP request logged
        self.env = {
            **os.environ,
            "KUBECONFIG": str(kubeconfig),
            "ADDONSTACK_NAMESPACES": ",".join(namespaces),
            "ADDONSTACK_DRIFT_INTERVAL": str(drift_interval),
            "ADDONSTACK_HEALTH_PORT": "0",
            "ADDONSTACK_METRICS_BIND_ADDRESS": "0",
            "ADDONSTACK_DATABASE_HOST": TEST_DEFAULTS.database_host or "",
            "ADDONSTACK_DATABASE_ADMIN_SECRET": TEST_DEFAULTS.database_admin_secret or "",
            "ADDONSTACK_DELETION_POLICY": deletion_policy,
            "PYTHONUNBUFFERED": "1",
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self._offset = 0  # where the current run's output begins in the log

    def start(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "the operator is already running"
        self._offset = self.log.stat().st_size if self.log.exists() else 0
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from addonstack.cli.main import main; main()", *self.args],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1

    def output(self) -> str:
        """This run's output so far."""
        with self.log.open("rb") as f:
            f.seek(self._offset)
            return f.read().decode(errors="replace")

    def wait_started(self, timeout: float = 60) -> float:
        """Block until kopf has run the startup handler; return the seconds it took."""
        return self.wait_output(STARTED, timeout)

    def wait_output(self, marker: str | tuple[str, ...], timeout: float = 60) -> float:
        """Block until this run's output contains ``marker`` (or one of them); return the seconds it took."""
        markers = (marker,) if isinstance(marker, str) else marker
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            text = self.output()
            if any(m in text for m in markers):
                return time.monotonic() - t0
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"operator exited with {self.proc.returncode}:\n{self.output()[-3000:]}")
            time.sleep(0.02)
        raise AssertionError(f"no {marker!r} from the operator after {timeout}s:\n{self.output()[-3000:]}")

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers, no graceful watch shutdown, mid-request if it was in one."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, as Kubernetes does on a pod's deletion; SIGKILL if it has not exited in 20 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None
