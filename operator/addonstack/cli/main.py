"""``addonstack``: the command line, built on click, with rich tables for people and --json for programs.

Exit codes: 0 success, 2 bad input (a usage error, a file or field that is wrong, an unknown id), 1 a
failure (a cluster error, a stack not ready in time). Every command takes ``--json``; with it, errors are
``{"error": {"field": ..., "message": ...}}`` on stdout too. Commands that need a cluster import the
operator extras lazily, so the library and the offline commands work without them.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from addonstack.catalog.loader import format_validation_error
from addonstack.constants import VERSION

out = Console()
err = Console(stderr=True)


BAD_INPUT = 2
FAILURE = 1
_JSON_META = "addonstack.json"
_FIELD_PREFIX = re.compile(r"^([A-Za-z][\w.\[\]-]*): ")


def json_requested() -> bool:
    """Whether the running command was given --json (its own flag, or the one every command gets)."""
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.params.get("as_json") or ctx.meta.get(_JSON_META):
            return True
        ctx = ctx.parent
    return False


def fail(message: str, code: int = FAILURE, field: str | None = None) -> NoReturn:
    """Report an error and exit: ``code`` 2 for bad input, 1 for a failure. ``field`` defaults to the
    ``field: `` prefix the library's messages start with."""
    if field is None and (m := _FIELD_PREFIX.match(message)):
        field = m.group(1)
    if json_requested():
        click.echo(json.dumps({"error": {"field": field, "message": message}}, ensure_ascii=False))
        sys.exit(code)
    err.print("[bold red]error:[/]", end=" ")
    err.print(message, markup=False, highlight=False, soft_wrap=True)
    sys.exit(code)


def fail_validation(source: str, exc: ValidationError) -> NoReturn:
    first = exc.errors()[0]["loc"] if exc.errors() else ()
    fail(format_validation_error(source, exc), BAD_INPUT, ".".join(str(p) for p in first) or None)


def warn(message: str) -> None:
    err.print("[yellow]warning:[/]", end=" ")
    err.print(message, markup=False, highlight=False, soft_wrap=True)


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def read_input(path: str) -> Any:
    """A JSON or YAML document from a file or ``-`` (stdin)."""
    from addonstack.render import yamlio

    try:
        text = sys.stdin.read() if path == "-" else Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read {path}: {exc.strerror}", BAD_INPUT, "input")
    try:
        return yamlio.load(text)
    except Exception as exc:
        fail(f"{path}: not valid JSON or YAML ({exc.__class__.__name__})", BAD_INPUT, "input")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(VERSION, prog_name="addonstack")
def cli() -> None:
    """AddonStack: sell self-hosted services; deploy them on Kubernetes or Docker Compose.

    \b
    Examples:
      addonstack catalog list --category automation
      addonstack generate --input stack.json --out ./out --seed 1
      addonstack render --target k8s -f examples/automation.yaml
      addonstack dev-cluster up
    """


# ---- catalog ------------------------------------------------------------------------------------


@cli.group()
def catalog() -> None:
    """Browse the service catalog.

    \b
    Example:
      addonstack catalog show n8n
    """


def _service_row(s: Any) -> list[str]:
    ports = ",".join(f"{p.container}/{p.protocol}" for p in s.ports) or "-"
    needs = (
        ",".join(
            n
            for n, on in (
                ("gpu", s.gpu == "required"),
                ("postgres", s.postgres is not None),
                ("build", s.needs_build),
            )
            if on
        )
        or "-"
    )
    return [s.id, s.category, s.image_ref or "(build)", ports, f"{s.memory_mb}", s.maturity, needs]


def _services_table(services: list[Any], title: str) -> Table:
    table = Table(title=title, header_style="bold cyan")
    for col in ("id", "category", "image", "ports", "MiB", "maturity", "needs"):
        table.add_column(col, overflow="fold")
    for s in services:
        table.add_row(*_service_row(s))
    return table


@catalog.command("list")
@click.option("--category", "-c", help="Only this category id.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_list(category: str | None, as_json: bool) -> None:
    """List deployable services.

    \b
    Example:
      addonstack catalog list --category vector-db --json
    """
    from addonstack import get_all_services, get_services_by_category
    from addonstack.catalog.loader import load_catalog

    if category and category not in load_catalog().categories:
        from addonstack.plan.resolve import did_you_mean

        hint = did_you_mean(category, load_catalog().categories)
        fail(
            f"--category: unknown category {category!r}{hint}; see `addonstack catalog categories`",
            BAD_INPUT,
            "category",
        )
    services = get_services_by_category(category) if category else get_all_services()
    if as_json:
        emit_json([s.model_dump(by_alias=True, exclude_none=True, mode="json") for s in services])
        return
    out.print(_services_table(services, f"{len(services)} services"))


@catalog.command("categories")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_categories(as_json: bool) -> None:
    """List service categories.

    \b
    Example:
      addonstack catalog categories
    """
    from addonstack import SERVICE_CATEGORIES, get_services_by_category

    cats = list(SERVICE_CATEGORIES)
    if as_json:
        emit_json([c.model_dump(by_alias=True, mode="json") for c in cats])
        return
    table = Table(header_style="bold cyan")
    for col in ("id", "name", "services"):
        table.add_column(col)
    for c in cats:
        table.add_row(c.id, f"{c.icon} {c.name}", str(len(get_services_by_category(c.id))))
    out.print(table)


@catalog.command("show")
@click.argument("service_id")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_show(service_id: str, as_json: bool) -> None:
    """Show one service in full.

    \b
    Example:
      addonstack catalog show qdrant --json
    """
    from addonstack import get_service_by_id

    svc = get_service_by_id(service_id)
    if svc is None:
        from addonstack.catalog.loader import load_catalog
        from addonstack.plan.resolve import did_you_mean

        hint = did_you_mean(service_id, load_catalog().services)
        fail(f"no service {service_id!r}{hint}; try `addonstack catalog search {service_id}`", BAD_INPUT, "service_id")
    if as_json:
        emit_json(svc.model_dump(by_alias=True, exclude_none=True, mode="json"))
        return
    out.print(f"[bold]{svc.icon} {svc.name}[/] ({svc.id}) - {svc.category}, {svc.maturity}")
    out.print(svc.description)
    out.print(
        f"image: {svc.image_ref or '(needs a build: pass prebuiltImages)'}   memory: {svc.memory_mb} MiB"
        f"   gpu: {svc.gpu}   platforms: {', '.join(svc.platforms)}"
    )
    for p in svc.ports:
        out.print(f"  port {p.container}/{p.protocol}{'' if p.exposed else ' (internal)'}  {p.description}")
    table = Table("variable", "kind", "default", "description", header_style="bold cyan")
    for e in svc.env:
        kind = (
            "credential" + (" (required)" if e.required else "")
            if e.credential
            else ("generated" if e.generate else "secret" if e.secret else "")
        )
        table.add_row(e.key, kind, "" if e.secret else (e.default or ""), e.description)
    out.print(table)
    if svc.requires:
        out.print(f"requires: {', '.join(svc.requires)}")
    out.print(f"docs: {svc.docs_url}")


@catalog.command("search")
@click.argument("words", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def catalog_search(words: tuple[str, ...], as_json: bool) -> None:
    """Find services by words in their id, name, description or tags.

    \b
    Example:
      addonstack catalog search vector database
    """
    from addonstack import get_all_services

    terms = [w.lower() for w in words]
    hits = [
        s
        for s in get_all_services()
        if all(t in " ".join([s.id, s.name, s.description, s.category, *s.tags]).lower() for t in terms)
    ]
    if as_json:
        emit_json([s.model_dump(by_alias=True, exclude_none=True, mode="json") for s in hits])
        return
    out.print(_services_table(hits, f"{len(hits)} matches"))


# ---- packs ----------------------------------------------------------------------------------------


@cli.group()
def packs() -> None:
    """Browse skill packs (task bundles of services and agent skills).

    \b
    Example:
      addonstack packs show automation-hub --json
    """


@packs.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def packs_list(as_json: bool) -> None:
    """List skill packs.

    \b
    Example:
      addonstack packs list --json
    """
    from addonstack import get_all_skill_packs

    items = get_all_skill_packs()
    if as_json:
        emit_json([p.model_dump(by_alias=True, mode="json") for p in items])
        return
    table = Table("id", "name", "services", "skills", title=f"{len(items)} packs", header_style="bold cyan")
    for p in items:
        table.add_row(p.id, f"{p.icon} {p.name}", ", ".join(p.required_services), str(len(p.skills)))
    out.print(table)


@packs.command("show")
@click.argument("pack_id")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
def packs_show(pack_id: str, as_json: bool) -> None:
    """Show one skill pack.

    \b
    Example:
      addonstack packs show automation-hub
    """
    from addonstack.catalog.loader import load_catalog

    cat = load_catalog()
    pack = cat.packs.get(pack_id)
    if pack is None:
        from addonstack.plan.resolve import did_you_mean

        hint = did_you_mean(pack_id, cat.packs)
        fail(f"no skill pack {pack_id!r}{hint}; see `addonstack packs list`", BAD_INPUT, "pack_id")
    if as_json:
        emit_json(pack.model_dump(by_alias=True, mode="json"))
        return
    out.print(f"[bold]{pack.icon} {pack.name}[/] ({pack.id})\n{pack.description}")
    out.print(f"required: {', '.join(pack.required_services)}")
    if pack.optional_services:
        out.print(f"optional: {', '.join(pack.optional_services)}")
    for sid in pack.skills:
        skill = cat.skills[sid]
        out.print(f"  skill {sid}: {skill.description} ({len(skill.tools)} tools)")


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


@cli.command()
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


@cli.command()
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


@cli.command()
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
        plan, ctx, _ = plan_stack(
            load_catalog(), spec, name, namespace or ns, StackDefaults(), make_rng(seed), target=target_name
        )
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


@cli.command()
@click.option("-f", "--file", "path", required=True, help="AddonStack manifest (YAML), or -.")
@click.option("--json", "as_json", is_flag=True, help="JSON for programs.")
@click.option("--database-host", help="The operator's default database host, if the stack relies on it.")
@click.option("--database-admin-secret", help="The operator's default admin Secret, if the stack relies on it.")
def validate(path: str, as_json: bool, database_host: str | None, database_admin_secret: str | None) -> None:
    """Check an AddonStack offline with the operator's own rules, in the words the operator uses.

    Exit 2 for a spec that is wrong in itself, 1 for one the platform cannot run (services need PostgreSQL
    or Redis and none is configured: the operator would stall with the same message).

    \b
    Example:
      addonstack validate -f examples/rag.yaml
    """
    from addonstack.catalog.loader import load_catalog
    from addonstack.plan.build import PlanError
    from addonstack.plan.secrets import make_rng
    from addonstack.plan.validate import check_spec, check_stack
    from addonstack.render.stack import StackDefaults, plan_stack, platform

    def invalid(problems: list[str], code: int) -> NoReturn:
        message = f"{path}: {len(problems)} problem(s)"
        if as_json:
            emit_json({"valid": False, "problems": problems, "error": {"field": "spec", "message": message}})
            sys.exit(code)
        fail(message + "\n" + "\n".join(f"  {p}" for p in problems), code, "spec")

    spec, name, ns = _load_stack(path)
    cat = load_catalog()
    if problems := check_spec(cat, spec):  # bad input; checked before planning: such a plan says little
        invalid(problems, BAD_INPUT)
    defaults = StackDefaults(database_host=database_host, database_admin_secret=database_admin_secret)
    try:
        plan, ctx, _ = plan_stack(cat, spec, name, ns, defaults, make_rng(0))
    except PlanError as exc:
        invalid([str(exc)], BAD_INPUT)
    if found := check_stack(cat, spec, plan, platform(ctx)):  # a valid spec the platform cannot run
        invalid([p.message for p in found], FAILURE)
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


def _remember_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.meta[_JSON_META] = True


def add_json_everywhere(command: click.Command) -> None:
    """Give every command without its own --json one that makes its errors JSON (the contract of the CLI)."""
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            add_json_everywhere(sub)
        return
    if not any(p.name == "as_json" or "--json" in getattr(p, "opts", []) for p in command.params):
        command.params.append(
            click.Option(["--json"], is_flag=True, expose_value=False, callback=_remember_json, help="Errors as JSON.")
        )


def main() -> None:
    from addonstack.cli import cluster_commands  # noqa: F401 - registers status, dev-cluster, operator

    add_json_everywhere(cli)
    try:
        cli.main(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.Abort:
        sys.exit(FAILURE)
    except click.ClickException as exc:  # usage errors: exit 2, as JSON when --json was given
        if "--json" in sys.argv[1:]:
            field = exc.param.name if isinstance(exc, click.BadParameter) and exc.param else None
            click.echo(json.dumps({"error": {"field": field, "message": exc.format_message()}}))
            sys.exit(exc.exit_code)
        exc.show()
        sys.exit(exc.exit_code)
