"""What went wrong talking to a cluster, in words a person can act on (never a traceback).

The cluster commands (``status``, ``validate --namespace``, ``operator run``) call :func:`explain` on any
error from the Kubernetes client: no kubeconfig, an API server that does not answer, the AddonStack CRD
not installed, a permission the credentials lack. ``None`` means the error is not one of those; the
caller then reports it as it is.
"""

from __future__ import annotations

import os

CRD = "addonstacks.addonstack.dev"
INSTALL_CRD = "kubectl apply -f crds/ (or helm install addonstack-crds deploy/chart/addonstack-crds)"
DEV_CLUSTER = "export KUBECONFIG=$(addonstack dev-cluster up | tail -1)"


def _server() -> str:
    return os.environ.get("KUBECONFIG") or "~/.kube/config"


def _status_code(exc: BaseException) -> tuple[int | None, str]:
    """(HTTP code, message) of an API error from lightkube or its HTTP library."""
    from lightkube.core.exceptions import ApiError

    if isinstance(exc, ApiError):
        return exc.status.code, str(exc.status.message or exc.status.reason or "")
    response = getattr(exc, "response", None)
    code = getattr(response, "status_code", None)
    return (int(code) if code is not None else None), str(getattr(response, "reason_phrase", "") or exc)


def transient(exc: BaseException) -> bool:
    """Errors worth retrying (``status --watch``): the API server unreachable, busy or restarting."""
    if _is_transport(exc):
        return True
    code, _ = _status_code(exc)
    return code in (429, 500, 502, 503, 504)


def _is_transport(exc: BaseException) -> bool:
    # httpx (or httpx2, by lightkube version) raises TransportError subclasses for refused connections and
    # timeouts; checked by name so the CLI needs neither library at import time.
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectError", "TimeoutException"}) or isinstance(exc, OSError)


def explain(exc: BaseException, *, resource: str = CRD, name: str | None = None) -> str | None:
    """The cause and the fix, or None for an error this module does not know."""
    from lightkube.core.exceptions import ConfigError

    if isinstance(exc, ConfigError):
        return (
            f"no usable kubeconfig ({exc}); set KUBECONFIG or create ~/.kube/config, or start a local "
            f"cluster: {DEV_CLUSTER}"
        )
    if _is_transport(exc):
        return (
            f"cannot reach the Kubernetes API server of {_server()} ({type(exc).__name__}: {exc}); is the cluster "
            f"running? `kubectl cluster-info` shows the address it uses (local: {DEV_CLUSTER})"
        )
    code, message = _status_code(exc)
    if code is None:
        return None
    if code == 401:
        return f"the API server refused the credentials of {_server()} (401 Unauthorized); log in again"
    if code == 403:
        return (
            f"forbidden: {message}; the account needs get, list and watch on {resource} in that namespace "
            "(a Role and RoleBinding granting them, or a ClusterRole for every namespace)"
        )
    if code == 404 and name and "could not find the requested resource" not in message:
        return f"{resource} {name!r} not found ({message}); `kubectl get {resource} -A` lists what exists"
    if code == 404:
        return f"the AddonStack CRD ({CRD}) is not installed in this cluster: {INSTALL_CRD}"
    return f"the API server answered {code}: {message}"
