"""Fixtures of the real-control-plane tests: the admin client with the AddonStack CRD installed."""

from __future__ import annotations

import pytest
from lightkube import Client

from tests.cluster.operator_harness import install_crd


@pytest.fixture(scope="session")
def client(admin_client: Client) -> Client:
    """The session's admin client, once the (current) AddonStack CRD is established."""
    install_crd(admin_client)
    return admin_client
