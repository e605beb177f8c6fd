"""Secret hygiene: every generated and user-supplied secret value appears only in Secret data and env files.

Stacks with generated passwords and a credentials Secret of user API keys run through the real operator
(debug logging captured); errors are provoked on purpose (a missing credentials Secret, credential keys
that match nothing, a Secret the API server refuses with a message that echoes its data, invalid library
input, a malformed env file). Then every value is searched - verbatim, JSON-escaped and base64 - in the
stacks (whole objects, status included), the namespace's Events, every log record, every child object
except Secret data, and the CLI's output of ``generate``/``update``/``render``/``validate`` without
``--out``. The figures are printed: ``secret values scanned: N, places scanned: M, leaks: 0``.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import secrets
import stat
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from lightkube import Client, codecs, operators
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_global_resource
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment, StatefulSet
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, Event, Namespace, PersistentVolumeClaim, Secret, Service
from lightkube.resources.networking_v1 import Ingress, NetworkPolicy
from pydantic import ValidationError

from addonstack.api import AddonStackError, generate_addon_stack
from addonstack.catalog.loader import load_catalog
from addonstack.cli.main import cli
from addonstack.cli.output import BAD_INPUT
from addonstack.controller.cluster import AddonStackResource
from addonstack.plan.secrets import env_file_key
from addonstack.render import envfile
from tests.cluster.operator_harness import condition, install_crd, running_operator, stack, wait_for
from tests.figures import record as record_figure

pytestmark = pytest.mark.cluster
LABEL = "addonstack.dev/stack"
MIN_LEN = 8  # shorter stored values (ports, flags) are not secrets and would match by accident
PART = 16  # long values are also searched by their first and last PART characters

VAP = create_global_resource("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicy",
                             "validatingadmissionpolicies")  # fmt: skip
VAPB = create_global_resource("admissionregistration.k8s.io", "v1", "ValidatingAdmissionPolicyBinding",
                              "validatingadmissionpolicybindings")  # fmt: skip


def _token(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(12)}"


@dataclass
class Scan:
    values: dict[str, str] = field(default_factory=dict)  # value -> where it came from (never printed)
    places: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    leaks: list[str] = field(default_factory=list)

    def add(self, value: str, origin: str) -> None:
        if len(value) >= MIN_LEN:
            self.values.setdefault(value, origin)

    def check(self, kind: str, where: str, text: str) -> None:
        self.places += 1
        self.kinds[kind] += 1
        for value, origin in self.values.items():
            forms = {
                "verbatim": value,
                "json": json.dumps(value)[1:-1],
                "base64": base64.b64encode(value.encode()).decode(),
            }
            if len(value) >= 2 * PART:  # a truncated echo ("got 'KEY value...'") still leaks part of it
                forms |= {"prefix": value[:PART], "suffix": value[-PART:]}
            for form, needle in forms.items():
                if needle in text:
                    self.leaks.append(f"{origin} ({form}) in {kind}: {where}")


_PLAIN = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class Capture(logging.Handler):
    """Every record, formatted with its exception and any extra fields kopf attaches."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[str] = []
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        extra = {k: v for k, v in record.__dict__.items() if k not in _PLAIN}
        self.records.append(self.format(record) + (f" {extra!r}" if extra else ""))


@pytest.fixture
def debug_logs() -> Iterator[Capture]:
    handler = Capture()
    root = logging.getLogger()
    old = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        root.setLevel(old)


def _apply(client: Client, obj: dict[str, Any]) -> None:
    client.apply(codecs.from_dict(obj), force=True)


def _secret_manifest(ns: str, name: str, data: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name, "namespace": ns}, "stringData": data}


def _policy_name(ns: str) -> str:
    return "hygiene-echo-" + hashlib.sha256(ns.encode()).hexdigest()[:10]


def _deny_secrets_of(client: Client, ns: str, stack_name: str) -> None:
    """A ValidatingAdmissionPolicy that refuses the stack's Secrets with a message echoing their data."""
    name = _policy_name(ns)
    _apply(
        client,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicy",
            "metadata": {"name": name},
            "spec": {
                "failurePolicy": "Fail",
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": [""],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE", "UPDATE"],
                            "resources": ["secrets"],
                        }
                    ]
                },
                "validations": [
                    {
                        "expression": f"!has(object.metadata.labels) || !('{LABEL}' in object.metadata.labels)"
                        f" || object.metadata.labels['{LABEL}'] != '{stack_name}'",
                        "messageExpression": "'refused, data: ' + (has(object.data) ? "
                        "object.data.map(k, k + '=' + string(object.data[k])).join(',') : 'none')",
                    }
                ],
            },
        },
    )
    _apply(
        client,
        {
            "apiVersion": "admissionregistration.k8s.io/v1",
            "kind": "ValidatingAdmissionPolicyBinding",
            "metadata": {"name": name},
            "spec": {
                "policyName": name,
                "validationActions": ["Deny"],
                "matchResources": {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}},
            },
        },
    )
    probe_value = _token("probe")
    probe = _secret_manifest(ns, "probe", {"k": probe_value})
    probe["metadata"]["labels"] = {LABEL: stack_name}

    def echoing() -> bool | str:
        try:
            client.create(codecs.from_dict(probe), dry_run=True)
        except ApiError as exc:
            echoed = base64.b64encode(probe_value.encode()).decode()  # CEL sees Secret data as base64
            return echoed in (exc.status.message or "") or f"other: {exc.status.message}"
        return "admitted"

    wait_for("the echoing admission policy to take effect", echoing, timeout=60)


def _cleanup_policy(client: Client, ns: str) -> None:
    name = _policy_name(ns)
    for res in (VAPB, VAP):
        with contextlib.suppress(ApiError):
            client.delete(res, name)


def _stored_secrets(client: Client, ns: str, scan: Scan) -> int:
    """Add every secret value the operator stored (catalog secret variables) to the scan; count Secrets."""
    cat = load_catalog()
    count = 0
    for s in client.list(Secret, namespace=ns, labels={LABEL: operators.exists()}):
        sid = (s.metadata.labels or {}).get("addonstack.dev/service")
        if not sid or sid not in cat.services:
            continue
        count += 1
        for key, raw in (s.data or {}).items():
            var = cat.services[sid].env_var(key)
            if var is None or var.secret:
                scan.add(base64.b64decode(raw).decode(), f"{s.metadata.name}.{key}")
    return count


def _without_secret_data(obj: dict[str, Any]) -> dict[str, Any]:
    if obj.get("kind") == "Secret":
        return {k: v for k, v in obj.items() if k not in ("data", "stringData")}
    return obj


def test_no_secret_value_outside_secret_data(
    kubeconfig: Path,
    admin_client: Client,
    namespace: str,
    debug_logs: Capture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    client = admin_client
    install_crd(client)
    ns = namespace
    scan = Scan()

    # -- user credentials, one with characters that need quoting everywhere --
    user = {
        "librechat.MONGO_URI": f"mongodb://lc:{_token('mongo')}@mongo.example:27017/lc",
        "OPENAI_API_KEY": _token("sk-openai"),
        "opencode.ANTHROPIC_API_KEY": _token("sk-ant") + "'\"\\$HOME`x`",
        "rocketchat.MONGO_URL": f"mongodb://rc:{_token('rcmongo')}@mongo.example/rc",
        "nosuchservice.SOME_KEY": _token("unmatched-a"),  # matches nothing: a warning must name only the key
        "NOT_A_CATALOG_VARIABLE": _token("unmatched-b"),
    }
    for key, value in user.items():
        scan.add(value, f"user credential {key}")
    _apply(client, _secret_manifest(ns, "user-creds", user))
    _apply(client, _secret_manifest(ns, "pg-admin", {"username": "postgres", "password": _token("pg-admin")}))

    specs = {
        "hyg-a": {"services": ["n8n", "librechat", "opencode"], "credentialsSecretRef": {"name": "user-creds"}},
        "hyg-b": {"services": ["rocketchat", "searxng"], "credentialsSecretRef": {"name": "user-creds"}},
        "hyg-missing": {"services": ["qdrant"], "credentialsSecretRef": {"name": "no-such-secret"}},
        "hyg-denied": {"services": ["opencode"], "credentialsSecretRef": {"name": "user-creds"}},
    }
    # hyg-denied runs in its own namespace, where an admission policy refuses its Secrets.
    denied_ns = f"{ns}-d"[:63]
    client.create(Namespace(metadata=ObjectMeta(name=denied_ns, labels={"addonstack.dev/test": "true"})))
    try:
        _apply(client, _secret_manifest(denied_ns, "user-creds", user))
        _deny_secrets_of(client, denied_ns, "hyg-denied")
        with running_operator(kubeconfig):
            for name, spec in specs.items():
                target = denied_ns if name == "hyg-denied" else ns
                client.create(codecs.from_dict(stack(name, target, spec)))

            def settled(name: str, target: str) -> Any:
                def probe() -> Any:
                    obj = client.get(AddonStackResource, name, namespace=target).to_dict()
                    st = obj.get("status") or {}
                    return st.get("observedGeneration") == obj["metadata"]["generation"] and obj

                return wait_for(f"a status on {name}", probe, timeout=90)

            for name in ("hyg-a", "hyg-b", "hyg-missing"):
                settled(name, ns)
            denied = wait_for(
                "hyg-denied to report the refused Secret",
                lambda: (
                    condition(
                        client.get(AddonStackResource, "hyg-denied", namespace=denied_ns).to_dict(), "Stalled"
                    ).get("reason")
                    == "ApplyFailed"
                ),
                timeout=90,
            )
            assert denied
            wait_for("hyg-a's Secrets", lambda: _stored_secrets(client, ns, Scan()) >= 5, timeout=60)
            time.sleep(9)  # a few drift-timer rounds, so their debug logs are captured too
        # Operator stopped: every log record is in.

        # -- the stored values (read back from the Secrets) --
        before = len(scan.values)
        assert _stored_secrets(client, ns, scan) >= 5
        assert len(scan.values) - before >= 10, "expected many generated values in the stacks' Secrets"

        # Provoked errors reached the status, without values.
        missing = client.get(AddonStackResource, "hyg-missing", namespace=ns).to_dict()
        assert "no-such-secret" in json.dumps(missing["status"])
        a = client.get(AddonStackResource, "hyg-a", namespace=ns).to_dict()
        assert "NOT_A_CATALOG_VARIABLE" in json.dumps(a["status"])
        stalled = condition(client.get(AddonStackResource, "hyg-denied", namespace=denied_ns).to_dict(), "Stalled")
        assert "Secret/opencode-env" in stalled["message"]

        # -- places: stacks, events, children, logs --
        for target in (ns, denied_ns):
            for obj in client.list(AddonStackResource, namespace=target):
                d = obj.to_dict()
                scan.check("AddonStack", f"{target}/{d['metadata']['name']}", json.dumps(d))
            for ev in client.list(Event, namespace=target):
                scan.check("Event", f"{target}/{ev.metadata.name}", json.dumps(ev.to_dict()))
            for res in (Deployment, StatefulSet, Service, ConfigMap, Job, NetworkPolicy, PersistentVolumeClaim,
                        Ingress, Secret):  # fmt: skip
                for obj in client.list(res, namespace=target):
                    d = _without_secret_data(obj.to_dict())
                    scan.check(f"{res.__name__}", f"{target}/{d['metadata']['name']}", json.dumps(d))
        assert len(debug_logs.records) > 100
        assert any("kopf" in r and " DEBUG " in r for r in debug_logs.records)
        for i, record in enumerate(debug_logs.records):
            scan.check("operator log", f"record {i}", record)
    finally:
        _cleanup_policy(client, denied_ns)
        with contextlib.suppress(ApiError):
            client.delete(Namespace, denied_ns)

    _cli_places(scan, tmp_path)

    record_figure(
        f"secret values scanned: {len(scan.values)}, places scanned: {scan.places} "
        f"in {len(scan.kinds)} kinds ({', '.join(f'{k}: {n}' for k, n in sorted(scan.kinds.items()))}), "
        f"leaks: {len(scan.leaks)}"
    )
    leaks = list(scan.leaks)  # messages name where and which key, never the value
    assert leaks == [], "\n".join(leaks[:20])


def _cli(args: list[str]) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def _env_secrets(scan: Scan, text: str, origin: str) -> None:
    """Values of secret variables in an env file (keys ``<PREFIX>__<KEY>``), named by their env-file key."""
    cat = load_catalog()
    for sid, values in envfile.parse(text).values.items():
        for env_key, value in values.items():
            var = cat.services[sid].env_var(env_key.split("__", 1)[1])
            if var is not None and var.secret and len(value) >= MIN_LEN:
                scan.values.setdefault(value, env_key)
                assert env_key == env_file_key(sid, var.key), origin


def _cli_places(scan: Scan, tmp: Path) -> None:
    """generate / update / render / validate without --out, and their errors."""
    user = {
        "librechat": {"MONGO_URI": f"mongodb://u:{_token('climongo')}@m/lc", "OPENAI_API_KEY": _token("sk-cli")},
        "opencode": {"ANTHROPIC_API_KEY": _token("sk-cli-ant") + "'\"\\$x"},
    }
    for sid, kv in user.items():
        for key, value in kv.items():
            scan.add(value, f"CLI credential {sid}.{key}")
    inp = {"instanceId": "hyg", "services": ["n8n", "librechat", "opencode", "searxng"], "credentials": user}
    inp_path = tmp / "input.json"
    inp_path.write_text(json.dumps(inp))

    # generate: the env file is the one place values may be; everything else is scanned.
    code, out, err = _cli(["generate", "-i", str(inp_path), "--seed", "7"])
    assert code == 0, err
    result = json.loads(out)
    env_text = result.pop("envFile")
    _env_secrets(scan, env_text, "CLI generate")
    generated = set(result["metadata"]["generatedSecretKeys"])
    assert len(generated) >= 8 and generated <= set(scan.values.values()), "generated values not collected"
    scan.check("CLI generate stdout", "generate (envFile removed)", json.dumps(result))
    scan.check("CLI generate stderr", "generate", err)

    # generate --out: the env file is 0600, the other files hold no value.
    out_dir = tmp / "out"
    code, out, err = _cli(["generate", "-i", str(inp_path), "--seed", "7", "--out", str(out_dir)])
    assert code == 0, err
    env_file = out_dir / ".env.addons"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert env_file.read_text() == env_text
    scan.check("CLI generate --out output", "stdout+stderr", out + err)
    for path in sorted(out_dir.rglob("*")):
        if path.is_file() and path != env_file:
            scan.check("generate --out file", path.name, path.read_text())

    # update: adding a service keeps values; its output follows the same rule.
    change = {
        "instanceId": "hyg",
        "currentCompose": (out_dir / "docker-compose.override.yml").read_text(),
        "currentEnv": env_text,
        "addServices": ["qdrant"],
        "credentials": user,
    }
    change_path = tmp / "change.json"
    change_path.write_text(json.dumps(change))
    code, out, err = _cli(["update", "-i", str(change_path), "--seed", "8"])
    assert code == 0, err
    updated = json.loads(out)
    updated.pop("envFile")
    scan.check("CLI update stdout", "update (envFile removed)", json.dumps(updated))
    scan.check("CLI update stderr", "update", err)

    # render k8s / compose of an AddonStack: values only in Secret data / the env file (stderr part).
    manifest = tmp / "stack.yaml"
    manifest.write_text(yaml.safe_dump(stack("hyg", "tenant", {"services": ["n8n", "librechat", "opencode"]})))
    code, out, err = _cli(["render", "--target", "k8s", "-f", str(manifest), "--seed", "9"])
    assert code == 0, err
    docs = [d for d in yaml.safe_load_all(out) if d]
    for d in docs:
        if d["kind"] == "Secret":
            for key, value in (d.get("stringData") or {}).items():
                var = load_catalog().services[d["metadata"]["labels"]["addonstack.dev/service"]].env_var(key)
                if var is None or var.secret:
                    scan.add(value, f"CLI render {d['metadata']['name']}.{key}")
    for d in docs:
        scan.check("CLI render k8s", f"{d['kind']}/{d['metadata']['name']}", json.dumps(_without_secret_data(d)))
    scan.check("CLI render k8s stderr", "warnings", err)
    code, out, err = _cli(["render", "--target", "compose", "-f", str(manifest), "--seed", "9"])
    assert code == 0, err
    marker = "# env file (.env.addons) follows on stderr"
    assert marker in err
    warnings_part, env_part = err.split(marker, 1)
    _env_secrets(scan, env_part, "CLI compose")
    scan.check("CLI render compose stdout", "compose", out)
    scan.check("CLI render compose stderr", "warnings before the env file", warnings_part)

    # errors: secret values in places the input is wrong must not come back in the message.
    secret = _token("err-secret") + "'\"\\$"
    scan.add(secret, "credential in invalid input")
    bad_inputs = {
        "unknown variable": {**inp, "credentials": {"n8n": {"NO_SUCH_VARIABLE": secret}}},
        "bad key": {**inp, "credentials": {"n8n": {"bad key!": secret}}},
        "bad service id": {**inp, "credentials": {"Bad_Service": {"KEY": secret}}},
        "not a string": {**inp, "credentials": {"n8n": {"N8N_ENCRYPTION_KEY": {"nested": secret}}}},
        "list": {**inp, "credentials": {"n8n": [secret]}},
        "unknown field": {**inp, "apiKey": secret},
    }
    for label, data in bad_inputs.items():
        path = tmp / "bad.json"
        path.write_text(json.dumps(data))
        code, out, err = _cli(["generate", "-i", str(path)])
        assert code == BAD_INPUT, f"{label}: accepted"
        scan.check("CLI error", f"generate: {label}", out + err)
        try:  # the library's own exception text, as a platform would log it
            generate_addon_stack(data, seed=1)
        except (ValidationError, AddonStackError) as exc:
            scan.check("library error", f"generate: {label}", f"{exc} {exc!r}")
        else:
            raise AssertionError(f"{label}: the library accepted it")
    # update with a malformed env file line that holds a value
    broken_env = env_text + f"\nN8N__N8N_ENCRYPTION_KEY {secret}\n"
    for label, env in {"malformed line": broken_env}.items():
        path = tmp / "bad-update.json"
        path.write_text(json.dumps({**change, "currentEnv": env}))
        code, out, err = _cli(["update", "-i", str(path)])
        assert code == BAD_INPUT, f"{label}: accepted"
        scan.check("CLI error", f"update: {label}", out + err)
    # validate / render of an invalid manifest
    bad_manifest = tmp / "bad-stack.yaml"
    bad_manifest.write_text(yaml.safe_dump(stack("hyg", "t", {"services": ["n8n"], "credentialsSecretRef": secret})))
    for args in (["validate", "-f", str(bad_manifest)], ["render", "-f", str(bad_manifest)]):
        code, out, err = _cli(args)
        assert code == BAD_INPUT, err
        scan.check("CLI error", " ".join(args[:1]), out + err)
