"""Read our Compose override and env file with Docker Compose's own loader (tools/composecheck).

``compose_view`` returns what Compose resolves: the env file as Compose parses it (``dotenv``) and, per
service, the interpolated environment, entrypoint, command and health check test. The ``composecheck`` fixture
(tests/unit/conftest.py) builds the tool.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from addonstack.render import envfile, yamlio


def compose_view(tool: Path, result: Any, workdir: Path, platform_env: Mapping[str, str]) -> dict[str, Any]:
    (workdir / "compose.yaml").write_text(result.compose_override, encoding="utf-8")
    (workdir / ".env.addons").write_text(result.env_file, encoding="utf-8")
    res = subprocess.run(
        [
            str(tool),
            "--project-dir",
            str(workdir),
            "-f",
            str(workdir / "compose.yaml"),
            "--env-file",
            str(workdir / ".env.addons"),
        ],
        env={"PATH": "/usr/bin:/bin", **platform_env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert res.returncode == 0, f"Compose could not load our files: {res.stderr}"
    view: dict[str, Any] = json.loads(res.stdout)
    return view


def assert_compose_carries_every_value(result: Any, view: dict[str, Any]) -> None:
    """Compose reads every stored value back exactly, and each container gets exactly the stored value."""
    dotenv = view["dotenv"]
    ours = envfile.parse(result.env_file)
    for section in ours.values.values():
        for key, value in section.items():
            assert dotenv.get(key) == value, f"Compose reads {key} as {dotenv.get(key)!r}, we stored {value!r}"
    doc = yamlio.load(result.compose_override)
    for sid, svc in doc["services"].items():
        for var, expr in (svc.get("environment") or {}).items():
            if expr.startswith("${") and expr.endswith("}") and expr[2:-1] in dotenv:
                got = view["services"][sid]["environment"][var]
                assert got == dotenv[expr[2:-1]], f"{sid}.{var}: container gets {got!r}"
