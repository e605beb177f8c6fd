"""Unit-test hooks: the property tests' figures (inputs tried, failures) in the terminal summary."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import settings

from tests.hypothesis_setup import TRIED

_failed: set[str] = set()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def composecheck() -> Path:
    """tools/composecheck built (cached under ~/.cache/addonstack) from compose-go."""
    res = subprocess.run(
        ["bash", str(ROOT / "tools" / "composecheck" / "build.sh")], capture_output=True, text=True, timeout=900
    )
    if res.returncode != 0:
        pytest.fail(
            f"building tools/composecheck failed (needs Go and the Go module proxy):\n{res.stderr}", pytrace=False
        )
    return Path(res.stdout.strip().splitlines()[-1])


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.failed:
        _failed.add(report.nodeid)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not TRIED:
        return
    profile = settings.get_current_profile_name()
    tw = terminalreporter
    tw.section(f"property tests (hypothesis profile {profile!r})")
    for nodeid, n in sorted(TRIED.items()):
        tw.write_line(f"{n:>8} inputs  {'FAILED' if nodeid in _failed else 'ok    '}  {nodeid}")
    failures = sum(1 for nodeid in TRIED if nodeid in _failed)
    tw.write_line(f"property tests: {sum(TRIED.values())} inputs tried in {len(TRIED)} tests, {failures} failures")
