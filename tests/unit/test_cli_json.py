"""The CLI for programs (issue 15, point 9): every command takes --json, errors included
(``{"error": {"field", "message"}}``, exit 2 for bad input, 1 for a failure), and unknown ids get a short
did-you-mean. Runs the installed ``addonstack`` entry point as a program would."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import click
import pytest

from addonstack.cli.main import add_json_everywhere, cli

ADDONSTACK = [sys.executable, "-c", "from addonstack.cli.main import main; main()"]


def run(*args: str, stdin: str | None = None) -> tuple[int, Any]:
    proc = subprocess.run([*ADDONSTACK, *args], input=stdin, capture_output=True, text=True, timeout=120)
    return proc.returncode, json.loads(proc.stdout) if proc.stdout.strip() else None


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out: list[tuple[str, click.Command]] = []
    for name, cmd in group.commands.items():
        if isinstance(cmd, click.Group):
            out += _commands(cmd, f"{prefix}{name} ")
        else:
            out.append((f"{prefix}{name}", cmd))
    return out


def test_every_command_takes_json() -> None:
    add_json_everywhere(cli)
    commands = _commands(cli)
    assert len(commands) >= 12
    for name, cmd in commands:
        assert any("--json" in getattr(p, "opts", []) for p in cmd.params), f"{name} has no --json"


def test_generate_reads_stdin_and_prints_json() -> None:
    code, data = run("generate", "--input", "-", "--json", stdin='{"instanceId": "My_Tenant", "services": ["qdrant"]}')
    assert code == 0
    assert data["metadata"]["resolvedServices"] == ["qdrant"]
    assert data["metadata"]["instanceSlug"].startswith("my-tenant-")


@pytest.mark.parametrize(
    ("args", "stdin", "field"),
    [
        (
            ["generate", "-i", "-", "--json"],
            '{"instanceId": "t", "services": [], "reservedPorts": [0]}',
            "reservedPorts.0",
        ),
        (["generate", "-i", "-", "--json"], "{not json", "input"),
        (
            ["update", "-i", "-", "--json"],
            '{"instanceId": "t", "currentCompose": "[1]", "currentEnv": ""}',
            "currentCompose",
        ),
        (["catalog", "list", "--category", "vectordb", "--json"], None, "category"),
        (["packs", "show", "nope", "--json"], None, "pack_id"),
        (["catalog", "show", "--json"], None, "service_id"),  # a usage error: click's own, as JSON
    ],
)
def test_bad_input_is_a_json_error_with_exit_2(args: list[str], stdin: str | None, field: str) -> None:
    code, data = run(*args, stdin=stdin)
    assert code == 2
    assert data["error"]["field"] == field and data["error"]["message"]


def test_unknown_id_gets_a_short_did_you_mean() -> None:
    code, data = run("catalog", "show", "qdrnt", "--json")
    assert code == 2
    message = data["error"]["message"]
    assert "did you mean 'qdrant'" in message and len(message) < 200


def test_generate_with_out_and_json_prints_a_summary(tmp_path: Path) -> None:
    code, data = run(
        "generate", "-i", "-", "--out", str(tmp_path), "--json", stdin='{"instanceId": "t", "services": ["n8n"]}'
    )
    assert code == 0 and data["metadata"]["resolvedServices"] == ["n8n"]
    assert str(tmp_path / ".env.gateway") in data["written"]
    assert (tmp_path / ".env.gateway").stat().st_mode & 0o077 == 0
    assert "N8N_HOST=n8n" in (tmp_path / ".env.gateway").read_text()
