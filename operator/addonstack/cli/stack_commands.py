"""Offline commands over a stack: ``generate`` and ``update`` (the library), ``render`` and ``validate``
(the operator's plan, without a cluster)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError

from addonstack.cli.output import (
    BAD_INPUT,
    FAILURE,
    emit_json,
    err,
    fail,
    fail_validation,
    out,
    read_input,
    warn,
)

# ---- generate / update -------------------------------------------------------------------------------


def _write_outputs(result: Any, out_dir: Path) -> list[Path]:
    from addonstack.render import envfile

    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    compose = out_dir / "docker-compose.override.yml"
    compose.write_text(result.compose_override, encoding="utf-8")
    written.append(compose)
    env = out_dir / ".env.addons"
    fd = os.open(env, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(result.env_file)
    os.chmod(env, 0o600)
    written.append(env)
    for rel, text in result.skill_files.items():  # openclaw/workspace/skills/<skillId>/SKILL.md
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    # The variables the skills use, for the gateway's env_file; an access token may be among them: 0600.
    gateway = out_dir / ".env.gateway"
    fd = os.open(gateway, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("".join(f"{k}={envfile.quote(v)}\n" for k, v in result.gateway_env.items()))
    os.chmod(gateway, 0o600)
    written.append(gateway)
    patch = out_dir / "openclaw.patch.json"
    patch.write_text(json.dumps(result.openclaw_config_patch, indent=2) + "\n", encoding="utf-8")
    written.append(patch)
    return written


def _run_library(kind: str, input_path: str, out_dir: str | None, seed: int | None, as_json: bool = False) -> None:
    from addonstack import AddonStackInput, AddonStackUpdateInput, generate_addon_stack, update_addon_stack
    from addonstack.api import AddonStackError

    data = read_input(input_path)
    try:
        if kind == "generate":
            result: Any = generate_addon_stack(AddonStackInput.model_validate(data), seed=seed)
        else:
            result = update_addon_stack(AddonStackUpdateInput.model_validate(data), seed=seed)
    except ValidationError as exc:
        fail_validation(input_path, exc)
    except AddonStackError as exc:
        fail(str(exc), BAD_INPUT)
    if out_dir:
        written = _write_outputs(result, Path(out_dir))
        meta = result.metadata
        if as_json:
            emit_json(
                {
                    "written": [str(w) for w in written],
                    "metadata": meta.model_dump(by_alias=True, mode="json"),
                    "warnings": result.warnings,
                }
            )
            return
        for w in result.warnings:
            warn(w)
        out.print(
            f"{meta.service_count} services, {len(meta.skipped_services)} skipped; "
            f"wrote {len(written)} files to {out_dir} (.env.addons is mode 0600)"
        )
        return
    emit_json(_without_secret_values(result.model_dump(by_alias=True, mode="json")))


def _without_secret_values(data: dict[str, Any]) -> dict[str, Any]:
    """Terminal output keeps secret values in ``envFile`` only; ``envVars`` names where each one is.

    Output printed to a terminal lands in scrollback, CI logs and pasted bug reports; the env file is the
    one place meant to hold values (and ``--out`` writes it 0600). The library API still returns them.
    """
    secret_values = {v["value"] for g in data.get("envVars") or [] for v in g.get("vars") or [] if v.get("secret")}
    gateway = data.get("gatewayEnv") or {}
    for key, value in gateway.items():
        if value in secret_values:
            gateway[key] = "(secret: see .env.gateway written by --out)"
    for group in data.get("envVars") or []:
        for var in group.get("vars") or []:
            if var.get("secret") and var.get("envKey"):
                var["value"] = f"(secret: see {var['envKey']} in envFile)"
    return data


@click.command()
@click.option("--input", "-i", "input_path", required=True, help="AddonStackInput as JSON/YAML file, or -.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write files instead of printing JSON.")
@click.option("--seed", type=int, help="Reproducible secrets (tests, demos). Never in production.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs (the result, or a summary with --out).")
def generate(input_path: str, out_dir: str | None, seed: int | None, as_json: bool) -> None:
    """Generate a Compose overlay, env file and skills for a new stack.

    \b
    Example:
      echo '{"instanceId":"demo","services":["n8n","qdrant"]}' | addonstack generate -i - --out ./demo
      echo '{"instanceId":"demo","services":["n8n"]}' | addonstack generate --input - --json
    """
    _run_library("generate", input_path, out_dir, seed, as_json)


@click.command()
@click.option("--input", "-i", "input_path", required=True, help="AddonStackUpdateInput as JSON/YAML, or -.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), help="Write files instead of printing JSON.")
@click.option("--seed", type=int, help="Reproducible secrets for added services.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs (the result, or a summary with --out).")
def update(input_path: str, out_dir: str | None, seed: int | None, as_json: bool) -> None:
    """Add or remove services of a stack made by generate, keeping every existing value.

    \b
    Example:
      addonstack update -i change.json --out ./demo
    """
    _run_library("update", input_path, out_dir, seed, as_json)


# ---- render / validate ---------------------------------------------------------------------------------


def _load_stack(path: str) -> tuple[Any, str, str]:
    from addonstack.plan.spec import AddonStackSpec

    doc = read_input(path)
    if not isinstance(doc, dict) or doc.get("kind") != "AddonStack":
        fail(f"{path}: expected an AddonStack resource (kind: AddonStack)", BAD_INPUT, "kind")
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    if not name:
        fail(f"{path}: metadata.name is required", BAD_INPUT, "metadata.name")
    try:
        spec = AddonStackSpec.model_validate(doc.get("spec") or {})
    except ValidationError as exc:
        fail_validation(f"{path}: spec", exc)
    return spec, str(name), str(meta.get("namespace") or "default")


@click.command()
@click.option("--target", "-t", type=click.Choice(["k8s", "compose"]), default="k8s", show_default=True)
@click.option("-f", "--file", "path", required=True, help="AddonStack manifest (YAML), or -.")
@click.option("--seed", type=int, help="Reproducible secrets.")
@click.option("--namespace", "-n", help="Override metadata.namespace.")
@click.option(
    "--json", "as_json", is_flag=True, help="JSON: {objects, warnings} (k8s) or {compose, envFile, warnings}."
)
def render(target: str, path: str, seed: int | None, namespace: str | None, as_json: bool) -> None:
    """Render an AddonStack offline, like `helm template` (includes generated Secrets).

    \b
    Example:
      addonstack render --target k8s -f examples/automation.yaml | kubectl apply --dry-run=server -f -
    """
    from addonstack.catalog.loader import load_catalog
    from addonstack.plan.build import PlanError
    from addonstack.plan.secrets import make_rng
    from addonstack.render import yamlio
    from addonstack.render.compose import render_compose, render_env_file
    from addonstack.render.kubernetes import render_kubernetes
    from addonstack.render.stack import StackDefaults, plan_stack

    spec, name, ns = _load_stack(path)
    target_name = "compose" if target == "compose" else "kubernetes"
    try:
        planned = plan_stack(
            load_catalog(), spec, name, namespace or ns, StackDefaults(), make_rng(seed), target=target_name
        )
        plan, ctx = planned.plan, planned.context
    except PlanError as exc:
        fail(str(exc), BAD_INPUT)
    if as_json:
        if target == "compose":
            emit_json({"compose": render_compose(plan), "envFile": render_env_file(plan), "warnings": plan.warnings})
        else:
            objs, warnings = render_kubernetes(plan, ctx)
            emit_json({"objects": objs, "warnings": [*plan.warnings, *warnings]})
        return
    for w in plan.warnings:
        warn(w)
    if target == "compose":
        click.echo(yamlio.dump(render_compose(plan)), nl=False)
        err.print("# env file (.env.addons) follows on stderr", highlight=False)
        click.echo(render_env_file(plan), err=True, nl=False)
        return
    objs, warnings = render_kubernetes(plan, ctx)
    for w in warnings:
        warn(w)
    click.echo(yamlio.dump_all(objs), nl=False)


@click.command()
@click.option("-f", "--file", "path", required=True, help="AddonStack manifest (YAML), or -.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
@click.option("--database-host", help="The operator's default database host, if the stack relies on it.")
@click.option("--database-admin-secret", help="The operator's default admin Secret, if the stack relies on it.")
@click.option(
    "--namespace", "-n",
    help="Target namespace (overrides metadata.namespace). When a cluster is reachable (KUBECONFIG), its "
    "pod-security.kubernetes.io/enforce label, ResourceQuotas and LimitRanges are read and the stack is "
    "checked against them as the operator does before creating anything.",
)  # fmt: skip
@click.option(
    "--pod-security",
    type=click.Choice(["privileged", "baseline", "restricted"]),
    help="The Pod Security level the namespace enforces, given offline (the namespace's label is not read).",
)
def validate(
    path: str,
    as_json: bool,
    database_host: str | None,
    database_admin_secret: str | None,
    namespace: str | None,
    pod_security: str | None,
) -> None:
    """Check an AddonStack offline with the operator's own rules, in the words the operator uses.

    Exit 2 for a spec that is wrong in itself, 1 for one the platform cannot run (services need PostgreSQL
    or Redis and none is configured: the operator would stall with the same message). Services the
    namespace's Pod Security level refuses are listed as skipped (reason pod_security), as the operator
    would skip them. With --namespace and a reachable cluster, a stack the namespace's ResourceQuota or
    LimitRange would refuse exits 1 with the operator's QuotaExceeded / LimitRangeViolated words; without a
    cluster that check is skipped with a warning.

    \b
    Example:
      addonstack validate -f examples/rag.yaml --namespace tenant-a
      addonstack validate -f examples/rag.yaml --pod-security restricted
    """
    from addonstack.catalog.loader import load_catalog
    from addonstack.cli.namespace_facts import read_namespace
    from addonstack.plan.build import PlanError
    from addonstack.plan.resolve import pod_security_level
    from addonstack.plan.resources import quota_problems
    from addonstack.plan.secrets import make_rng
    from addonstack.plan.validate import check_spec, check_stack
    from addonstack.reasons import ConditionReason
    from addonstack.render.kubernetes import render_kubernetes
    from addonstack.render.stack import StackDefaults, plan_stack, platform

    def invalid(problems: list[str], code: int, reason: ConditionReason = ConditionReason.INVALID_SPEC) -> NoReturn:
        message = f"{path}: {len(problems)} problem(s) ({reason.value})"
        if as_json:
            error = {"field": "spec", "message": message}
            emit_json({"valid": False, "reason": reason.value, "problems": problems, "error": error})
            sys.exit(code)
        fail(message + "\n" + "\n".join(f"  {p}" for p in problems), code, "spec")

    spec, name, ns = _load_stack(path)
    cat = load_catalog()
    if problems := check_spec(cat, spec):  # bad input; checked before planning: such a plan says little
        invalid(problems, BAD_INPUT)
    defaults = StackDefaults(database_host=database_host, database_admin_secret=database_admin_secret)
    facts = read_namespace(namespace, name, label=pod_security is None) if namespace else None
    level = pod_security or (facts.level if facts else None)
    try:
        planned = plan_stack(
            cat, spec, name, namespace or ns, defaults, make_rng(0), pod_security=pod_security_level(level)
        )
        plan, ctx = planned.plan, planned.context
    except PlanError as exc:
        invalid([str(exc)], BAD_INPUT)
    if found := check_stack(cat, spec, plan, platform(ctx)):  # a valid spec the platform cannot run
        invalid([p.message for p in found], FAILURE, found[0].reason)
    if facts is not None and facts.quotas is not None:  # what the namespace would refuse (the operator's check)
        objs, _ = render_kubernetes(plan, ctx)
        if found := quota_problems(objs, facts.live, facts.quotas, facts.limit_ranges):
            invalid([p.message for p in found], FAILURE, found[0].reason)
    result = {
        "valid": True,
        "services": plan.ids,
        "skipped": [s.model_dump(by_alias=True) for s in plan.skipped],
        "warnings": plan.warnings,
    }
    if as_json:
        emit_json(result)
        return
    out.print(f"[green]valid[/]: {len(plan.ids)} services would deploy: {', '.join(plan.ids) or '-'}")
    for s in plan.skipped:
        out.print(f"skipped {s.service_id}: {s.reason} - {s.details}", markup=False)
    for w in plan.warnings:
        warn(w)
