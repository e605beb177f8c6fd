"""The docs tell the truth: their commands parse and the offline ones run, their links and paths exist, their
Python examples execute, every condition reason the operator can set is explained, every CLI help shows a
working example, and the examples/ stacks render valid Kubernetes and Compose output."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from click.testing import CliRunner
from kubernetes_validate import validate as k8s_validate

from addonstack import generate_addon_stack
from addonstack.cli.main import cli
from addonstack.reasons import ConditionReason, ServicePhase, SkipReason
from tests.docsutil import (
    DOCS,
    ROOT,
    SHELL_LANGS,
    addonstack_invocations,
    anchors,
    code_spans,
    command_lines,
    doc_files,
    fenced_blocks,
    is_offline,
    links,
    segments,
)
from tests.schemas import compose_errors

BIN = Path(sys.executable).parent  # the venv's bin: `addonstack` sits next to the interpreter
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
DOC_IDS = [str(p.relative_to(ROOT)) for p in doc_files()]


def shell_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.pop("KUBECONFIG", None)
    env["COLUMNS"] = "200"
    return env


def run_shell(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env=shell_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


# ---- commands in the docs -------------------------------------------------------------------------


def _walk(cmd: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, cmd
    for name, sub in getattr(cmd, "commands", {}).items():
        yield from _walk(sub, (*path, name))


COMMANDS = dict(_walk(cli))


def _resolve(args: list[str]) -> tuple[tuple[str, ...], list[str]]:
    """The subcommand path at the front of ``args`` and the rest."""
    path: tuple[str, ...] = ()
    rest = list(args)
    while rest and isinstance(COMMANDS[path], click.Group):
        group_opts = {o for p in COMMANDS[path].params if isinstance(p, click.Option) and not p.is_flag for o in p.opts}
        if rest[0].split("=")[0] in group_opts:  # a group's own option (`addonstack --catalog-dir DIR ...`)
            del rest[: 1 if "=" in rest[0] else 2]
            continue
        if (*path, rest[0]) not in COMMANDS:
            break
        path = (*path, rest.pop(0))
    return path, rest


def _doc_invocations(doc: Path) -> list[tuple[list[str], bool]]:
    """(args, complete): commands in shell blocks must be complete; a code span in prose may name a command
    without its required options (`addonstack validate`), but what it names must exist."""
    found = []
    for block in fenced_blocks(doc, SHELL_LANGS | {""}):
        found += [(a, True) for a in addonstack_invocations(block.text)]
    for span in code_spans(doc):
        found += [(a, False) for a in addonstack_invocations(span)]
    return found


def _check_invocation(args: list[str], complete: bool = True) -> str | None:
    """None if ``addonstack ARGS`` names real commands and options, else the problem."""
    path, rest = _resolve(args)
    cmd = COMMANDS[path]
    if isinstance(cmd, click.Group):
        if rest and not rest[0].startswith("-"):
            return f"`{' '.join(path) or 'addonstack'}` has no subcommand {rest[0]!r}"
        rest = [a for a in rest if a != "--help"] or []
        if rest and rest != ["--version"]:
            return f"unexpected arguments {rest}"
        return None
    if "--help" in rest:
        return None
    try:
        cmd.make_context(" ".join(("addonstack", *path)), list(rest), resilient_parsing=False)
    except click.MissingParameter as exc:
        return None if not complete else exc.format_message()
    except click.ClickException as exc:
        return exc.format_message()
    return None


@pytest.mark.parametrize("doc", doc_files(), ids=DOC_IDS)
def test_every_addonstack_command_in_the_docs_parses(doc: Path) -> None:
    runner = CliRunner()
    problems = []
    for args, complete in _doc_invocations(doc):
        path, _ = _resolve(args)
        res = runner.invoke(cli, [*path, "--help"])
        if res.exit_code != 0:
            problems.append(f"addonstack {' '.join(path)} --help exits {res.exit_code}")
        if problem := _check_invocation(args, complete):
            problems.append(f"`addonstack {shlex.join(args)}`: {problem}")
    assert not problems, f"{doc.name}:\n" + "\n".join(problems)


def test_the_docs_use_the_cli_widely() -> None:
    """The parse check above is only worth something if the docs really contain commands."""
    paths = {_resolve(a)[0] for d in doc_files() for a, _ in _doc_invocations(d)}
    for needed in [("catalog", "show"), ("render",), ("validate",), ("status",), ("generate",)]:
        assert needed in paths, f"no doc shows `addonstack {' '.join(needed)}`"


@pytest.mark.parametrize("doc", doc_files(), ids=DOC_IDS)
def test_modules_and_make_targets_named_in_the_docs_exist(doc: Path) -> None:
    text = "\n".join([*(b.text for b in fenced_blocks(doc)), *code_spans(doc)])
    for module in re.findall(r"python -m ([\w.]+)", text):
        assert importlib.util.find_spec(module) is not None, f"{doc.name}: no module {module}"
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    targets = set(re.findall(r"^([a-z][\w-]*):", makefile, re.M))
    for target in re.findall(r"(?:^|\s)make ([a-z][\w-]*)", text):
        assert target in targets, f"{doc.name}: `make {target}` is not a Makefile target"


# ---- links and paths ---------------------------------------------------------------------------------

PATH_SPAN = re.compile(r"^(?:\.\./)*(?:bench|catalog|crds|deploy|docs|examples|operator|tests|tools)/[\w./-]*$")


@pytest.mark.parametrize("doc", doc_files(), ids=DOC_IDS)
def test_links_and_paths_exist(doc: Path) -> None:
    problems = []
    for href in links(doc):
        if re.match(r"^[a-z]+:", href):
            continue  # http(s), mailto: not checked offline
        target, _, anchor = href.partition("#")
        path = (doc.parent / target).resolve() if target else doc
        if not path.exists():
            problems.append(f"link {href}: {path} does not exist")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path):
            problems.append(f"link {href}: no heading #{anchor} in {path.name}")
    # In shell, `deploy/NAME` or `job/NAME` are kubectl resources: only words that look like files or dirs count.
    words = [w.strip("'\"(),") for b in fenced_blocks(doc, SHELL_LANGS | {""}) for w in b.text.split()]
    files = [w for w in words if re.search(r"\.\w+$|/$", w)]
    for span in [*code_spans(doc), *files]:
        if PATH_SPAN.match(span) and not (ROOT / span).exists():
            problems.append(f"path `{span}` does not exist")
    assert not problems, f"{doc.name}:\n" + "\n".join(problems)


def test_the_docs_the_issue_asks_for_exist_and_are_linked() -> None:
    pages = [
        "quickstart",
        "concepts",
        "api-reference",
        "library",
        "contributing-catalog",
        "troubleshooting",
        "catalog",
        "integrations/caddy",
        "integrations/traefik",
        "integrations/ingress-nginx",
        "integrations/argocd",
        "integrations/helm",
    ]
    quickstart = links(DOCS / "quickstart.md") + links(ROOT / "README.md")
    for page in pages:
        assert (DOCS / f"{page}.md").is_file(), page
    reachable = {
        h.split("#")[0].removeprefix("docs/") for d in (DOCS / "quickstart.md", ROOT / "README.md") for h in links(d)
    }
    assert "quickstart.md" in {Path(h).name for h in quickstart}, "the README links the quickstart"
    missing = [p for p in pages if f"{p}.md" not in reachable and p != "quickstart"]
    assert not missing, f"not linked from the README or the quickstart: {missing}"


# ---- the quickstart ----------------------------------------------------------------------------------


def test_quickstart_offline_commands_run(tmp_path: Path) -> None:
    blocks = fenced_blocks(DOCS / "quickstart.md", SHELL_LANGS)
    offline = [b for b in blocks if is_offline(b)]
    assert len(offline) >= 2, "the quickstart's catalog and first-stack blocks are offline"
    outputs = []
    for block in offline:
        res = run_shell(block.text, tmp_path)
        assert res.returncode == 0, f"quickstart.md line {block.line} failed:\n{block.text}\n{res.stderr}"
        outputs.append(res.stdout)
    joined = "\n".join(outputs)
    assert "meilisearch" in joined
    assert re.search(r"valid.*meilisearch, uptime-kuma", joined), joined
    rendered = list(yaml.safe_load_all((tmp_path / "my-stack.k8s.yaml").read_text()))
    kinds = {d["kind"] for d in rendered if d}
    assert {"Deployment", "Service", "Secret"} <= kinds or {"StatefulSet", "Service", "Secret"} <= kinds, kinds


def test_quickstart_cluster_blocks_are_the_ones_with_kubectl_or_status() -> None:
    """Every block the unit test leaves out is run by tests/cluster/test_examples.py (make lines excepted)."""
    for block in fenced_blocks(DOCS / "quickstart.md", SHELL_LANGS):
        if is_offline(block):
            continue
        words = {seg.split()[0] for line in command_lines(block.text) for seg in segments(line)}
        assert words & {"make", "kubectl", "export"} or "status" in block.text, block.text


# ---- Python in the docs ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "doc",
    [ROOT / "README.md", DOCS / "library.md", DOCS / "integrations" / "caddy.md", DOCS / "integrations" / "traefik.md"],
    ids=lambda p: p.name,
)
def test_python_examples_run(doc: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = fenced_blocks(doc, {"python"})
    assert blocks, f"{doc.name} has Python examples"
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {"__name__": "__docs__"}
    for block in blocks:
        exec(compile(block.text, f"{doc.name}:{block.line}", "exec"), scope)  # our own docs, run as written
    if doc.name == "library.md":
        out = tmp_path / "tenant-42"
        env = out / ".env.addons"
        assert stat.S_IMODE(env.stat().st_mode) == 0o600
        compose = yaml.safe_load((out / "docker-compose.override.yml").read_text())
        assert "meilisearch" in compose["services"] and "qdrant" not in compose["services"]
        assert "MEILISEARCH__MEILI_MASTER_KEY=" in env.read_text()
        assert list(out.glob("openclaw/workspace/skills/*/SKILL.md")), "skill files were written"
        assert "N8N_HOST=n8n" in (out / ".env.gateway").read_text()
        caddy = (out / "Caddyfile.addons").read_text()
        assert "handle_path /meilisearch/* {" in caddy or "/meilisearch" in caddy
        assert "qdrant" not in caddy


def test_helm_guide_chart_renders_a_valid_stack(tmp_path: Path) -> None:
    tools = Path.home() / ".cache" / "addonstack" / "tools"
    helm = sorted(p for p in tools.glob("*/helm") if p.is_file())
    if not helm:
        pytest.fail(f"helm not found under {tools}: run `make tools`")
    chart = tmp_path / "tenant-chart"
    (chart / "templates").mkdir(parents=True)
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: tenant-chart\nversion: 0.1.0\n")
    for block in fenced_blocks(DOCS / "integrations" / "helm.md", {"yaml"}):
        first = block.text.splitlines()[0]
        if first == "# templates/addonstack.yaml":
            (chart / "templates" / "addonstack.yaml").write_text(block.text)
        elif first == "# values.yaml":
            (chart / "values.yaml").write_text(block.text)
    assert (chart / "values.yaml").exists() and (chart / "templates" / "addonstack.yaml").exists()
    helm_cmd = shlex.quote(str(helm[-1]))
    validate = f"{helm_cmd} template tenant-a ./tenant-chart | addonstack validate -f -"
    res = run_shell(f"{validate} --database-host postgres.platform.svc --database-admin-secret pg-admin", tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "n8n, qdrant" in res.stdout
    res = run_shell(validate, tmp_path)  # n8n without a database: the operator would stall, so validate fails
    assert res.returncode == 1 and "n8n needs PostgreSQL" in res.stderr


# ---- troubleshooting covers every reason ----------------------------------------------------------

EVENT_ONLY_REASONS = {"ServiceSkipped", "ServiceResumed"}  # Events, not conditions (controller/decide.py)


def condition_reasons() -> set[str]:
    """Every condition reason: the members of the one enum (addonstack/reasons.py)."""
    return {r.value for r in ConditionReason}


def service_phases() -> set[str]:
    """The values of ``status.services[].phase``."""
    return {p.value for p in ServicePhase}


def test_every_reason_and_phase_is_known() -> None:
    """Guards the lists themselves: were they empty, the coverage test below would pass vacuously."""
    assert {
        "Ready",
        "Progressing",
        "Idle",
        "InvalidSpec",
        "ApplyFailed",
        "DatabaseSetupFailed",
        "RolloutFailed",
        "DatabaseNotConfigured",
        "QuotaExceeded",
        "ImagePullFailed",
    } <= condition_reasons()


def test_troubleshooting_explains_every_reason_phase_and_skip() -> None:
    text = (DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    everything = condition_reasons() | EVENT_ONLY_REASONS | service_phases() | {r.value for r in SkipReason}
    missing = sorted(r for r in everything if f"`{r}`" not in text)
    assert not missing, f"docs/troubleshooting.md does not explain: {missing}"
    headed = anchors(DOCS / "troubleshooting.md")
    stalled = {r.value for r in ConditionReason if r.stalls}
    assert not [r for r in stalled if r.lower() not in headed], "each Stalled reason has its own section"
    assert "kubectl patch addonstack NAME" in text and '{"metadata":{"finalizers":null}}' in text


# ---- CLI help: every command shows an example that works ---------------------------------------------


def _help_examples(path: tuple[str, ...]) -> list[str]:
    text = CliRunner().invoke(cli, [*path, "--help"], terminal_width=200).output
    _, found, after = text.partition("Example")
    assert found, f"`addonstack {' '.join(path)} --help` shows no example"
    section = after.split("\n\n", 1)[0] if after.startswith(("s:\n", ":\n")) else after
    return [ln.strip() for ln in section.splitlines() if "addonstack " in ln.strip()]


OFFLINE_EXAMPLES = {"catalog", "packs", "render", "validate", "generate", "update"}


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory where the help examples' inputs exist: examples/, stack.json, and change.json for update."""
    wd = tmp_path_factory.mktemp("help-examples")
    (wd / "examples").symlink_to(ROOT / "examples")
    (wd / "stack.json").write_text(json.dumps({"instanceId": "demo", "services": ["qdrant"]}))
    made = generate_addon_stack({"instanceId": "demo", "services": ["n8n"]}, seed=1)
    change = {
        "instanceId": "demo",
        "addServices": ["qdrant"],
        "currentCompose": made.compose_override,
        "currentEnv": made.env_file,
    }
    (wd / "change.json").write_text(json.dumps(change))
    return wd


@pytest.mark.parametrize("path", list(COMMANDS), ids=lambda p: " ".join(p) or "addonstack")
def test_help_shows_a_working_example(path: tuple[str, ...], workdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each example parses; the offline ones run (in-process; `echo X | addonstack ...` feeds X on stdin)."""
    examples = _help_examples(path)
    assert examples, f"`addonstack {' '.join(path)} --help` has no example command line"
    monkeypatch.chdir(workdir)
    monkeypatch.delenv("KUBECONFIG", raising=False)
    for line in examples:
        invocations = addonstack_invocations(line)
        assert invocations, line
        for args in invocations:
            assert _check_invocation(args) is None, f"{line}: {_check_invocation(args)}"
        parts = segments(line)
        i = next(i for i, p in enumerate(parts) if p.startswith("addonstack "))
        args = shlex.split(parts[i])[1:]
        offline = args[0] in OFFLINE_EXAMPLES or args[:2] == ["dev-cluster", "status"]
        if not offline:
            continue  # needs a cluster or starts processes: parsed above; run by the demo and the cluster tests
        stdin = shlex.split(parts[i - 1])[1] + "\n" if i and parts[i - 1].startswith("echo ") else None
        res = CliRunner().invoke(cli, args, input=stdin)
        assert res.exit_code == 0, f"example `{line}` failed:\n{res.output}"
        assert res.stdout.strip(), f"example `{line}` printed nothing"


# ---- examples/ render valid output -------------------------------------------------------------------


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.name)
def test_example_renders_valid_kubernetes_and_compose(example: Path) -> None:
    runner = CliRunner()
    checked = runner.invoke(cli, ["validate", "-f", str(example), "--json"])
    assert checked.exit_code == 0, checked.output
    summary = json.loads(checked.stdout)
    assert summary["valid"] and summary["services"] and not summary["skipped"], summary

    k8s = runner.invoke(cli, ["render", "--target", "k8s", "-f", str(example), "--seed", "1", "-n", "tenant-a"])
    assert k8s.exit_code == 0, k8s.output
    docs = [d for d in yaml.safe_load_all(k8s.stdout) if d]
    workloads = {d["metadata"]["name"] for d in docs if d["kind"] in ("Deployment", "StatefulSet")}
    assert workloads == set(summary["services"])
    for doc in docs:
        if doc["apiVersion"].startswith("traefik.io/"):
            continue  # not a Kubernetes schema; its shape is covered by tests/unit/test_render_k8s.py
        k8s_validate(doc, "1.35.0", strict=True)

    compose = runner.invoke(cli, ["render", "--target", "compose", "-f", str(example), "--seed", "1"])
    assert compose.exit_code == 0, compose.output
    doc = yaml.safe_load(compose.stdout)
    assert compose_errors(doc) == []
    assert set(summary["services"]) <= set(doc["services"])


def test_examples_cover_the_issue_use_cases() -> None:
    services = {p.stem: set(yaml.safe_load(p.read_text())["spec"]["services"]) for p in EXAMPLES}
    assert {"qdrant", "searxng"} <= services["rag"]
    assert "n8n" in services["automation"]
    assert {"grafana", "prometheus", "loki"} <= services["monitoring"]
    assert yaml.safe_load((ROOT / "examples" / "gpu.yaml").read_text())["spec"]["gpu"] is True
