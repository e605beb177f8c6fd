"""The API server's own count of requests (``apiserver_request_total``), read from its /metrics.

Writes are counted where they land, so a claim like "a restarted operator writes nothing" is checked against
what the API server served, not against the operator's own bookkeeping. Shared by bench/operator.py and the
restart test (tests/cluster/test_restart.py).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

__all__ = ["OPERATOR_RESOURCES", "READ_VERBS", "operator_reads", "operator_writes", "request_counts", "request_seconds"]

# What the operator writes; other controllers write pods, replicasets, events, leases, */status, endpoints.
OPERATOR_RESOURCES = frozenset(
    {
        "addonstacks",
        "secrets",
        "configmaps",
        "services",
        "persistentvolumeclaims",
        "deployments",
        "statefulsets",
        "jobs",
        "ingresses",
        "networkpolicies",
    }
)
READ_VERBS = frozenset({"GET", "LIST", "WATCH"})
_SAMPLE = re.compile(r"^apiserver_request_total\{(?P<labels>[^}]*)\} (?P<value>\S+)$")
_SECONDS = re.compile(r"^apiserver_request_duration_seconds_sum\{(?P<labels>[^}]*)\} (?P<value>\S+)$")

Counts = Counter[tuple[str, str, str]]  # (verb, resource, subresource) -> requests served so far


def request_counts(http: Any) -> Counts:
    """Parse /metrics fetched with ``http`` (a lightkube client adapter or any httpx client with a base URL)."""
    return Counter({k: int(v) for k, v in _summed(http.get("/metrics").raise_for_status().text, _SAMPLE).items()})


def request_seconds(http: Any) -> dict[tuple[str, str, str], float]:
    """Seconds the API server spent serving requests so far (``apiserver_request_duration_seconds_sum``), by
    (verb, resource, subresource): where its time goes, which counts alone do not say (a LIST is not a GET)."""
    return _summed(http.get("/metrics").raise_for_status().text, _SECONDS)


def _summed(text: str, sample: re.Pattern[str]) -> dict[tuple[str, str, str], float]:
    out: dict[tuple[str, str, str], float] = {}
    for line in text.splitlines():
        m = sample.match(line)
        if not m:
            continue
        labels = dict(re.findall(r'(\w+)="([^"]*)"', m.group("labels")))
        key = (labels.get("verb", ""), labels.get("resource", ""), labels.get("subresource", ""))
        out[key] = out.get(key, 0.0) + float(m.group("value"))
    return out


def operator_writes(delta: Counts) -> dict[str, int]:
    """Write requests (any verb but GET/LIST/WATCH) to what the operator writes, by "VERB resource[/sub]"."""
    out: dict[str, int] = {}
    for (verb, resource, sub), n in delta.items():
        if n <= 0 or verb in READ_VERBS or resource not in OPERATOR_RESOURCES:
            continue
        if sub and resource != "addonstacks":
            continue  # e.g. deployments/status: written by kube-controller-manager
        out[f"{verb} {resource}{'/' + sub if sub else ''}"] = n
    return out


def reads_by(delta: Counts) -> dict[str, int]:
    """Every GET and LIST served, by "VERB resource", most first: every client's, and every resource (the
    operator also reads pods, Leases, quotas, LimitRanges and namespaces, which :func:`operator_reads` leaves
    out; the cluster's controllers read through watches, so in a quiet period these are nearly all its)."""
    out: dict[str, int] = {}
    for (verb, resource, _), n in delta.items():
        if n > 0 and verb in ("GET", "LIST"):
            out[f"{verb} {resource}"] = out.get(f"{verb} {resource}", 0) + n
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def operator_reads(delta: Counts) -> int:
    return sum(
        n for (verb, resource, _), n in delta.items() if verb in ("GET", "LIST") and resource in OPERATOR_RESOURCES
    )
