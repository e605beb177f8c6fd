"""What every command shares: console output, errors with exit codes (as JSON under --json), input
files, and the --json flag given to every command. Imported by ``main`` and the command modules alike,
so they never import each other."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, NoReturn

import click
from pydantic import ValidationError
from rich.console import Console

from addonstack.catalog.loader import format_validation_error

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
