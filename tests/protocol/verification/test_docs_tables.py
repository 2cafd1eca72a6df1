"""docs/VERIFICATION.md's sampling and detection tables are what plan_check and
explain compute: the plan the node and the simulator follow (issue 16)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from protocol.messages import Assurance
from protocol.verification import explain, plan_check

DOC = (Path(__file__).resolve().parents[3] / "docs" / "VERIFICATION.md").read_text()
FRACTIONS = (0.01, 0.05, 0.1, 0.25, 0.5, 1.0)
ROWS = {
    "normal, fresh (0), 2 checkers": (Assurance.NORMAL, 0.0),
    "normal, 0.5, 2 checkers": (Assurance.NORMAL, 0.5),
    "normal, trusted (1)": (Assurance.NORMAL, 1.0),
    "high, fresh (2 checkers)": (Assurance.HIGH, 0.0),
    "high, trusted (2 checkers)": (Assurance.HIGH, 1.0),
}


def _cells(label: str) -> list[str]:
    line = next(ln for ln in DOC.splitlines() if ln.startswith(f"| {label} |"))
    return [c.strip() for c in line.strip("|").split("|")][1:]


def _percent(cell: str) -> float:
    return float(re.sub(r"[^0-9.]", "", cell)) / 100


@pytest.mark.parametrize("label", ROWS)
def test_detection_rows_match_explain(label: str) -> None:
    assurance, reputation = ROWS[label]
    k, checked, *per_fraction = _cells(label)
    plan = plan_check(assurance, reputation)
    assert int(k) == plan.k and _percent(checked) == pytest.approx(plan.check_probability)
    for cell, fraction in zip(per_fraction, FRACTIONS, strict=True):
        p = explain(assurance, reputation, fraction).p_caught_per_frame
        if cell.startswith("≈"):
            assert p > 0.9999
        else:
            digits = len(cell.split(".")[1].rstrip(" %")) if "." in cell else 0
            assert round(p * 100, digits) == pytest.approx(float(cell.rstrip(" %")))


@pytest.mark.parametrize("assurance", [Assurance.NONE, Assurance.NORMAL, Assurance.HIGH])
def test_sampling_rows_match_plan_check(assurance: Assurance) -> None:
    checked, tiles, checkers = _cells(assurance.value if assurance is not Assurance.NORMAL
                                      else "normal (default)")  # fmt: skip
    fresh, trusted = plan_check(assurance, 0.0), plan_check(assurance, 1.0)
    assert checkers.startswith(f"{fresh.checkers} → {trusted.checkers}")
    assert checked == f"{fresh.check_probability:.0%} → {trusted.check_probability:.0%}".replace(
        "%", " %"
    )
    assert tiles == f"{fresh.k} → {trusted.k}"


def test_the_trusted_frames_to_99_figure() -> None:
    frames = explain(Assurance.NORMAL, 1.0, 1.0).frames_for_99
    assert f"caught within {frames} frames with 99 %" in DOC.replace("\n", " ")
