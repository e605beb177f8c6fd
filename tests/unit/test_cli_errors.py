"""Cluster commands name the cause and the fix instead of printing a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from addonstack.cli import cluster_commands  # noqa: F401 - registers status, operator
from addonstack.cli.kube_errors import explain, transient
from addonstack.cli.main import cli

UNREACHABLE = """apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: x}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
"""


def run(args: list[str], kubeconfig: Path) -> tuple[int, str]:
    res = CliRunner().invoke(cli, args, env={"KUBECONFIG": str(kubeconfig)})
    return res.exit_code, res.output


def test_no_kubeconfig(tmp_path: Path) -> None:
    for args in (["status"], ["operator", "run"]):
        code, output = run(args, tmp_path / "absent")
        assert code == 1 and "no usable kubeconfig" in output and "dev-cluster up" in output
        assert "Traceback" not in output


def test_unreachable_api_server(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(UNREACHABLE)
    code, output = run(["status"], config)
    assert code == 1 and "cannot reach the Kubernetes API server" in output and "Traceback" not in output


def test_status_watch_retries_an_unreachable_server_then_explains(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(UNREACHABLE)
    code, output = run(["status", "--watch", "--timeout", "3"], config)
    assert code == 1 and "retrying in" in output and "cannot reach" in output


def api_error(code: int, message: str) -> ApiError:
    return ApiError(status=Status(code=code, message=message, reason="x"))


@pytest.mark.parametrize(
    ("code", "message", "name", "words"),
    [
        (403, 'addonstacks.addonstack.dev is forbidden: User "bob" cannot list', None, "needs get, list and watch"),
        (404, "the server could not find the requested resource", None, "CRD (addonstacks.addonstack.dev) is not"),
        (404, 'addonstacks.addonstack.dev "demo" not found', "demo", "'demo' not found"),
        (401, "Unauthorized", None, "refused the credentials"),
    ],
)
def test_api_errors_are_explained(code: int, message: str, name: str | None, words: str) -> None:
    why = explain(api_error(code, message), name=name)
    assert why is not None and words in why


def test_only_passing_troubles_are_retried() -> None:
    assert transient(api_error(503, "unavailable")) and transient(ConnectionRefusedError())
    assert not transient(api_error(403, "forbidden")) and not transient(api_error(404, "gone"))
