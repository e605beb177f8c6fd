"""Start a DevCluster for a test scope: a failed start fails the tests (never an error, never a skip)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

from addonstack.devcluster import DevCluster, DevClusterError


@contextlib.contextmanager
def started(cluster: DevCluster) -> Iterator[DevCluster]:
    """``cluster`` up for the block, and down afterwards whatever happened."""
    try:
        cluster.up()
    except DevClusterError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield cluster
    finally:
        cluster.down()
