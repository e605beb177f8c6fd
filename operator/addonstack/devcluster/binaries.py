"""Where the control-plane binaries come from: built once from Go modules into a per-version cache.

Our machines can neither run kind/k3d nor download envtest binaries, so tools/k8s/build.sh builds them
from pinned Go modules; this module finds that cache (or $ADDONSTACK_K8S_BIN) and says what is missing
in words that name the fix.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

from addonstack.devcluster.processes import DevClusterError

log = logging.getLogger(__name__)

K8S_VERSION = "v1.35.4"  # keep in step with K8S_VERSION in tools/k8s/build.sh
RECIPE_REV = 1  # and with its RECIPE_REV
DEFAULT_BIN_DIR = Path.home() / ".cache" / "addonstack" / "k8s" / f"{K8S_VERSION}-r{RECIPE_REV}"
BINARIES = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")
KWOK_STAGES = (
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
)
BUILD_SCRIPT = Path(__file__).resolve().parents[3] / "tools" / "k8s" / "build.sh"


def find_binaries() -> Path:
    """Where the binaries are expected: $ADDONSTACK_K8S_BIN, else the build script's cache dir."""
    return Path(os.environ.get("ADDONSTACK_K8S_BIN") or DEFAULT_BIN_DIR)


def missing_binaries(bin_dir: Path) -> list[str]:
    missing = [b for b in BINARIES if not os.access(bin_dir / b, os.X_OK)]
    return missing + [f"kwok-stages/{s}" for s in KWOK_STAGES if not (bin_dir / "kwok-stages" / s).is_file()]


def ensure_binaries(bin_dir: Path | None = None) -> Path:
    """Return the binaries dir, running tools/k8s/build.sh first when something is missing.

    The build needs the repository checkout (the script and its pinned go.mod/go.sum); an installed
    package without it gets an error that says what to do.
    """
    bin_dir = bin_dir or find_binaries()
    if not missing_binaries(bin_dir):
        return bin_dir
    if not BUILD_SCRIPT.is_file():
        raise DevClusterError(missing_message(bin_dir))
    log.warning("building the Kubernetes binaries into %s (15-30 min cold)", bin_dir)
    env = {**os.environ, "K8S_BIN_DIR": str(bin_dir)}
    rc = subprocess.run(["bash", str(BUILD_SCRIPT)], env=env, stdout=sys.stderr, check=False).returncode
    if rc != 0 or missing_binaries(bin_dir):
        raise DevClusterError(f"{BUILD_SCRIPT} exited with {rc}; " + missing_message(bin_dir))
    return bin_dir


def missing_message(bin_dir: Path) -> str:
    return (
        f"Kubernetes binaries missing in {bin_dir}: {', '.join(missing_binaries(bin_dir))}. "
        "Build them with `make k8s` (tools/k8s/build.sh), or point ADDONSTACK_K8S_BIN at a directory "
        f"holding {', '.join(BINARIES)} and kwok-stages/."
    )
