"""The control plane's processes: free ports, waiting for readiness, and stopping only what we started.

Every component runs in its own session and outlives the process that started it, so ``down`` works from
another process by pid. A recorded pid is only signalled while it still runs the recorded binary: a pid
recycled by the system is never touched.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

log = logging.getLogger(__name__)

STOP_GRACE = 10.0
T = TypeVar("T")


class DevClusterError(RuntimeError):
    """The dev cluster could not be started; the message says which component and shows its log."""


def poll(
    what: str,
    probe: Callable[[], T | None],
    deadline: float,
    interval: float = 0.2,
    check: Callable[[], None] | None = None,
) -> T:
    """Call ``probe`` until it returns something truthy; ``check`` may raise to give up early."""
    last: object = None
    while True:
        if check is not None:
            check()
        try:
            value = probe()
        except (OSError, ValueError) as exc:  # refused, TLS not up yet, HTTP errors, half-written JSON
            value, last = None, exc
        if value:
            return value
        if time.monotonic() >= deadline:
            raise DevClusterError(f"timed out waiting for {what}" + (f" (last error: {last})" if last else ""))
        time.sleep(interval)


def free_ports(count: int) -> list[int]:
    """Distinct free TCP ports on 127.0.0.1, held open together so they cannot repeat."""
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _proc_state(pid: int) -> str | None:
    """The /proc state letter of ``pid`` after reaping it if it is our exited child; None if gone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[1].split()[0]


def pid_alive(pid: int) -> bool:
    return _proc_state(pid) not in (None, "Z", "X")


def is_ours(pid: int, binary: str) -> bool:
    """True when ``pid`` is alive and still runs ``binary`` (guards against recycled pids)."""
    if not pid_alive(pid):
        return False
    try:
        argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
    except OSError:
        return False
    return argv0 == binary


def rss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return None


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU time ``pid`` has used so far (from /proc; None when it is gone or not Linux)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime (fields 14, 15)


def stop(pid: int, binary: str, proc: subprocess.Popen[bytes] | None, grace: float = STOP_GRACE) -> None:
    """SIGTERM ``pid`` (only if it still runs ``binary``), SIGKILL after ``grace`` seconds, and reap it."""

    def gone(timeout: float) -> bool:
        end = time.monotonic() + timeout
        while True:
            if proc is not None:
                proc.poll()
            if not pid_alive(pid):
                return True
            if time.monotonic() >= end:
                return False
            time.sleep(0.05)

    if not is_ours(pid, binary):
        return
    with contextlib.suppress(ProcessLookupError):  # it may exit between the check and the signal
        os.kill(pid, signal.SIGTERM)
        if not gone(grace):
            log.log(
                logging.WARNING if grace >= STOP_GRACE else logging.DEBUG,
                "%s (pid %d) still running %ss after SIGTERM; killing it",
                binary,
                pid,
                grace,
            )
            os.kill(pid, signal.SIGKILL)
            gone(5)


def kill_now(pid: int, binary: str, proc: subprocess.Popen[bytes] | None) -> None:
    """SIGKILL ``pid`` at once, like a crash (only if it still runs ``binary``), and wait until it is gone."""
    if not is_ours(pid, binary):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    poll(
        f"{binary} (pid {pid}) to exit",
        lambda: (proc is not None and proc.poll() is not None) or not pid_alive(pid),
        time.monotonic() + 10,
        interval=0.05,
    )


def tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"
