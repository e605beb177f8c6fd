"""Figures the reliability tests measure (kills survived, leaks found...), shown after every run.

pytest hides a passing test's prints, so tests hand their figures to :func:`record` instead and the
root conftest prints them in a section of the terminal summary; docs/reliability.md quotes them.
"""

from __future__ import annotations

FIGURES: list[str] = []


def record(line: str) -> None:
    """Keep ``line`` for the summary (and print it, for ``pytest -s``)."""
    text = line.strip()
    FIGURES.append(text)
    print(f"\n{text}", flush=True)
