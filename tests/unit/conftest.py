"""Unit-test hooks: the property tests' figures (inputs tried, failures) in the terminal summary."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.hypothesis_setup import TRIED

_failed: set[str] = set()


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
