"""Error text and terminal output never carry a secret value (the cluster test scans everything; these pin
the three places that once leaked)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from addonstack import AddonStackInput, generate_addon_stack
from addonstack.cli.main import cli
from addonstack.render import envfile

SECRET = "sk-do-not-echo-7f3a9c1e5b"


@pytest.mark.parametrize(
    "credentials",
    [
        {"n8n": {"N8N_ENCRYPTION_KEY": {"nested": SECRET}}},
        {"n8n": [SECRET]},
        {"n8n": {"N8N_ENCRYPTION_KEY": 12345, "bad key": SECRET}},
    ],
)
def test_library_validation_error_hides_input(credentials: object) -> None:
    with pytest.raises(ValidationError) as err:
        AddonStackInput.model_validate({"instanceId": "x", "services": ["n8n"], "credentials": credentials})
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)
    assert "credentials.n8n" in str(err.value)  # the field is still named


def test_env_file_error_does_not_quote_the_line() -> None:
    text = "# addonstack:instance=x\n# addonstack:service=n8n\nN8N__N8N_ENCRYPTION_KEY " + SECRET + "\n"
    with pytest.raises(envfile.EnvFileError) as err:
        envfile.parse(text)
    assert "line 3" in str(err.value) and SECRET[:10] not in str(err.value)


def test_cli_json_keeps_secret_values_in_the_env_file_only(tmp_path: Path) -> None:
    data = {"instanceId": "x", "services": ["n8n"], "credentials": {}}
    path = tmp_path / "in.json"
    path.write_text(json.dumps(data))
    result = CliRunner().invoke(cli, ["generate", "-i", str(path), "--seed", "3"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    library = generate_addon_stack(data, seed=3)
    assert out["envFile"] == library.env_file
    secret_vars = [v for g in out["envVars"] for v in g["vars"] if v["secret"] and v["envKey"]]
    assert secret_vars
    for var in secret_vars:
        assert var["value"] == f"(secret: see {var['envKey']} in envFile)"
    values = [v.value for g in library.env_vars for v in g.vars if v.secret and v.env_key]
    body = json.dumps({k: v for k, v in out.items() if k != "envFile"})
    assert all(v not in body for v in values if len(v) >= 8)
