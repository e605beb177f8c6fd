"""The ArgoCD health check, run by a real Lua runtime against ArgoCD-style test cases."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import LuaRuntime  # type: ignore[import-untyped]

HERE = Path(__file__).resolve().parents[2] / "deploy" / "argocd"
CASES = yaml.safe_load((HERE / "health_test.yaml").read_text())["tests"]


def to_lua(lua: Any, value: Any) -> Any:
    if isinstance(value, dict):
        return lua.table_from({k: to_lua(lua, v) for k, v in value.items()})
    if isinstance(value, list):
        return lua.table_from([to_lua(lua, v) for v in value])
    return value


def health(obj: dict[str, Any]) -> dict[str, str]:
    lua = LuaRuntime(unpack_returned_tuples=True)
    lua.globals().obj = to_lua(lua, obj)
    result = lua.execute((HERE / "health.lua").read_text())
    return {"status": result["status"], "message": result["message"]}


@pytest.mark.parametrize("case", CASES, ids=[c["inputPath"] for c in CASES])
def test_health(case: dict[str, Any]) -> None:
    obj = yaml.safe_load((HERE / case["inputPath"]).read_text())
    assert health(obj) == case["healthStatus"]
