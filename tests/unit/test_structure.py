"""Code stays easy to change: no module over 500 lines, no function over 80, no import cycle in addonstack.

Measured on the source (AST), imports inside functions included: a lazy import still ties two modules.
An entry in ALLOWED is a known offender with the reason it is still there; it must keep offending (so the
list only shrinks) and names the issue that removes it.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "addonstack"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80

# "path relative to operator/addonstack" or "path::function" -> why it is allowed for now.
ALLOWED: dict[str, str] = {}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = ("addonstack", *path.relative_to(PACKAGE).with_suffix("").parts)
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _offenders() -> dict[str, int]:
    found: dict[str, int] = {}
    for path in _modules().values():
        rel = path.relative_to(PACKAGE).as_posix()
        text = path.read_text(encoding="utf-8")
        if (n := len(text.splitlines())) > MAX_MODULE_LINES:
            found[rel] = n
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    found[f"{rel}::{node.name}"] = length
    return found


def test_no_module_or_function_is_too_long() -> None:
    new = {k: v for k, v in _offenders().items() if k not in ALLOWED}
    assert not new, (
        f"over {MAX_MODULE_LINES} lines per module / {MAX_FUNCTION_LINES} per function: {new}; split along the steps"
    )


def test_allowed_offenders_still_offend() -> None:
    """An entry that was fixed leaves the list, so the list cannot hide a new offender under an old name."""
    gone = sorted(set(ALLOWED) - set(_offenders()))
    assert not gone, f"remove from ALLOWED (no longer over the limit): {gone}"


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            targets = [base, *(f"{base}.{a.name}" for a in node.names)]
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            # Importing an enclosing package is not a cycle: it is initialised before its modules.
            if target and target != name and not name.startswith(target + "."):
                found.add(target)
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle_inside_addonstack() -> None:
    modules = _modules()
    graph = {name: _imports(name, path, set(modules)) for name, path in modules.items()}
    assert sum(map(len, graph.values())) > 100, "the import scan found almost nothing: it is broken"
    assert not _cycles(graph), f"modules that import each other (directly or around a loop): {_cycles(graph)}"


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _pyproject() -> dict[str, Any]:
    return tomllib.loads((PACKAGE.parents[1] / "pyproject.toml").read_text(encoding="utf-8"))


def test_every_top_level_module_has_a_layer() -> None:
    """import-linter checks only what its layers name: a new package outside them would escape the contract."""
    contracts = _pyproject()["tool"]["importlinter"]["contracts"]
    (layers,) = [c["layers"] for c in contracts if c["type"] == "layers"]
    named = {m.strip() for layer in layers for m in layer.split("|")}
    top = {f"addonstack.{p.stem}" for p in PACKAGE.iterdir() if p.suffix == ".py" and p.stem != "__init__"}
    top |= {f"addonstack.{p.name}" for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert len(top) > 5
    assert top <= named, f"add to the layers contract in pyproject.toml: {sorted(top - named)}"


def test_mypy_checks_every_module_strictly() -> None:
    mypy = _pyproject()["tool"]["mypy"]
    assert mypy["strict"] is True and mypy["packages"] == ["addonstack"]
    for override in mypy.get("overrides", []):
        modules = override["module"] if isinstance(override["module"], list) else [override["module"]]
        relaxed = {k for k in override if k != "module" and k != "ignore_missing_imports"}
        assert not any(m.startswith("addonstack") for m in modules), f"mypy relaxed for {modules}: {relaxed}"
        assert not relaxed, f"mypy override {override} relaxes more than missing stubs of third-party packages"
