"""The simulator's calibration against a real devnet run, reduced to fit CI.

Runs ``bench/sim_fidelity.py`` as a user would (its own fit, a real devnet with
Blender and anvil, the simulator) on a small job and fails when the simulated
makespan is off by more than 25 % (the bench's goal is 10 % on the full run:
docs/SIMULATIONS.md, Calibration) or spend by more than 10 %.

The devnet's five processes and the fit share this machine's cores, so the box's
background load between the fits and the run moves the makespan error (measured
on a shared 2-core box at load 4-9: -28 % to +29 %, most runs within ±13 %; on
4a8014f at load 2.6-7: +6.8 %, -22.4 %, then +25.6 % and -18.1 % on its rerun; 60-139 s). A run
over the limit is run once more: a model that is off fails both, a load swing rarely.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import needs_stack

pytestmark = [pytest.mark.slow, needs_stack]
ROOT = Path(__file__).resolve().parents[2]
LIMIT = 0.25


def _run(out: Path) -> tuple[dict[str, Any], str]:
    cmd = [sys.executable, str(ROOT / "bench" / "sim_fidelity.py"), *REDUCED, "--json", str(out)]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=out.parent)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    report = run.stdout[-3000:]
    print(report)  # the table, shown with pytest -rP
    return json.loads(out.read_text())["figures"], report


def test_simulated_makespan_and_spend_follow_a_real_run(tmp_path: Path) -> None:
    figures, report = _run(tmp_path / "fidelity.json")
    assert abs(figures["spend_wei"]["error"]) <= 0.10, report
    if abs(figures["makespan_s"]["error"]) > LIMIT:  # once more: the box's load may have moved
        figures, report = _run(tmp_path / "again.json")
        assert abs(figures["spend_wei"]["error"]) <= 0.10, report
    assert abs(figures["makespan_s"]["error"]) <= LIMIT, report


REDUCED = ["--frames", "4", "--workers", "2", "--kill-after", "0"]
