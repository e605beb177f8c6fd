"""The benchmark's speed-corrected ratio (bench/operator_throughput.py, bench/operator_rounds.py).

The correction is easy to turn the wrong way round, and the figure it prints stands next to the target's in
docs/performance.md. Checked here on figures of real rounds (the thirteenth session's T1, rounds 3 and 5).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def bench() -> tuple[ModuleType, ModuleType]:
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("operator_throughput"), importlib.import_module("operator_rounds")
    finally:
        sys.path.remove(str(BENCH))


def _cpu(kcm: float, sched: float, kwok: float, apiserver: float) -> dict[str, float]:
    return {"kube-apiserver": apiserver, "kube-controller-manager": kcm, "kube-scheduler": sched, "kwok": kwok}


# T1 round 3: the operator's burst ran on a slow machine (its gauge 10.8 CPU-s against 9.0).
SLOW_OPERATOR: dict[str, Any] = {
    "ratio": 0.694,
    "raw": {"until_available_s": 59.4, "cpu_s": _cpu(15.1, 5.1, 3.9, 67.0)},
    "operator": {"until_all_ready_s": 85.55, "cpu_s": _cpu(18.7, 6.2, 4.6, 93.5)},
}
# T1 round 5: the raw client's burst ran slow (its gauge 10.3 against 8.6).
SLOW_RAW: dict[str, Any] = {
    "ratio": 1.059,
    "raw": {"until_available_s": 72.36, "cpu_s": _cpu(17.7, 5.8, 4.5, 82.2)},
    "operator": {"until_all_ready_s": 68.33, "cpu_s": _cpu(14.8, 4.9, 3.7, 74.3)},
}


def test_the_gauge_leaves_out_what_the_operator_adds_to(bench: tuple[ModuleType, ModuleType]) -> None:
    ot, _ = bench
    assert ot.gauge_cpu(SLOW_OPERATOR["operator"]["cpu_s"]) == 10.8  # kube-apiserver's 93.5 is not in it
    assert not {"kube-apiserver", "etcd", "kube-controller-manager", "operator"} & set(ot.GAUGE)


def test_a_slower_machine_is_taken_out_of_the_ratio_in_either_direction(bench: tuple[ModuleType, ModuleType]) -> None:
    ot, _ = bench
    slow_op = ot.speed_corrected(
        SLOW_OPERATOR["ratio"], SLOW_OPERATOR["raw"]["cpu_s"], SLOW_OPERATOR["operator"]["cpu_s"]
    )
    slow_raw = ot.speed_corrected(SLOW_RAW["ratio"], SLOW_RAW["raw"]["cpu_s"], SLOW_RAW["operator"]["cpu_s"])
    assert slow_op == pytest.approx(0.694 * 10.8 / 9.0, abs=0.001) and slow_op > SLOW_OPERATOR["ratio"]
    assert slow_raw == pytest.approx(1.059 * 8.6 / 10.3, abs=0.001) and slow_raw < SLOW_RAW["ratio"]
    assert abs(slow_op - slow_raw) < 0.06  # 0.69 and 1.06 on the wall, 0.83 and 0.88 corrected


def test_without_a_gauge_the_wall_ratio_stands(bench: tuple[ModuleType, ModuleType]) -> None:
    ot, _ = bench
    assert ot.speed_corrected(0.9, {"kube-apiserver": 70.0}, SLOW_RAW["operator"]["cpu_s"]) == 0.9


def test_the_rounds_summary_pools_seconds_per_gauge_cpu_second(bench: tuple[ModuleType, ModuleType]) -> None:
    ot, rounds = bench
    got = rounds.summary([SLOW_OPERATOR, SLOW_RAW])
    assert got["ratios"] == [0.694, 1.059] and got["met"] == 1
    assert got["lowest_speed_corrected"] == min(got["speed_corrected"]) > 0.8
    raw_per = (59.4 + 72.36) / (9.0 + 10.3)
    op_per = (85.55 + 68.33) / (10.8 + 8.6)
    assert got["pooled_speed_corrected"] == pytest.approx(raw_per / op_per, abs=0.001)
    line = ot.speed_line(got["median_speed_corrected"], 59.4, SLOW_OPERATOR["raw"]["cpu_s"], 85.55,
                         SLOW_OPERATOR["operator"]["cpu_s"])  # fmt: skip
    assert "raw 6.60, operator 7.92" in line
