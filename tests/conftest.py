"""Shared fixtures: one real local control plane per test session, and a fresh namespace per test.

Starting the cluster costs seconds, so it is shared by the session; namespaces keep tests apart. Set
ADDONSTACK_TEST_KUBECONFIG to run against a cluster that is already up (e.g. ``addonstack dev-cluster up``).
Missing binaries make the cluster tests fail, not skip: a green run must mean they ran.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.config.kubeconfig import KubeConfig
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace

from addonstack.devcluster import DevCluster, find_binaries, missing_binaries
from tests import hypothesis_setup  # noqa: F401  (registers the Hypothesis profiles before the plugin loads one)
from tests.devclusters import started
from tests.figures import FIGURES

CLUSTER_TESTS = Path(__file__).parent / "cluster"
_log_dirs: list[Path] = []


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/cluster needs the control plane, so `-m "not cluster"` leaves it out."""
    for item in items:
        if CLUSTER_TESTS in item.path.parents:
            item.add_marker(pytest.mark.cluster)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FIGURES:
        terminalreporter.section("figures measured by the tests")
        for line in FIGURES:
            terminalreporter.write_line(line)
    if _log_dirs and (terminalreporter.stats.get("failed") or terminalreporter.stats.get("error")):
        for d in _log_dirs:
            terminalreporter.write_line(f"dev cluster component logs: {d}")


@pytest.fixture(scope="session")
def dev_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevCluster | None]:
    """The session's DevCluster, or None when ADDONSTACK_TEST_KUBECONFIG names an outside cluster."""
    if os.environ.get("ADDONSTACK_TEST_KUBECONFIG"):
        yield None
        return
    bin_dir = find_binaries()
    if missing := missing_binaries(bin_dir):
        pytest.fail(
            f"cluster tests need the Kubernetes binaries; missing in {bin_dir}: {', '.join(missing)}. "
            "Run `make k8s` (tools/k8s/build.sh), set ADDONSTACK_K8S_BIN to a directory holding them, or "
            "deselect these tests with -m 'not cluster'.",
            pytrace=False,
        )
    cluster = DevCluster(tmp_path_factory.mktemp("devcluster"), bin_dir)
    _log_dirs.append(cluster.log_dir)
    with started(cluster):
        yield cluster


@pytest.fixture(scope="session")
def kubeconfig(dev_cluster: DevCluster | None) -> Path:
    """Path of an admin kubeconfig for the test cluster."""
    if dev_cluster is not None:
        return dev_cluster.kubeconfig
    path = Path(os.environ["ADDONSTACK_TEST_KUBECONFIG"])
    if not path.is_file():
        pytest.fail(f"ADDONSTACK_TEST_KUBECONFIG={path} is not a file", pytrace=False)
    return path


@pytest.fixture(scope="session")
def admin_client(kubeconfig: Path) -> Iterator[Client]:
    client = Client(config=KubeConfig.from_file(str(kubeconfig)), field_manager="addonstack-tests")
    yield client
    client.close()


@pytest.fixture
def namespace(admin_client: Client, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace named after the test; deleted afterwards without waiting for it to go."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"t-{stem}-{uuid.uuid4().hex[:6]}"
    admin_client.create(Namespace(metadata=ObjectMeta(name=name, labels={"addonstack.dev/test": "true"})))
    yield name
    with contextlib.suppress(ApiError):
        admin_client.delete(Namespace, name)
