"""Same seed, same bytes — across processes with different hash seeds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from simulations.runner import run_scenario, write_run
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS, SMALL

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = """
import sys
from pathlib import Path
from simulations.runner import run_scenario, write_run
from simulations.scenario import load_scenario
from tests.simulations.conftest import SCENARIOS, SMALL
scenario = load_scenario(SCENARIOS / "cheaters_20pct.toml", SMALL)
write_run(run_scenario(scenario, int(sys.argv[1])), Path(sys.argv[2]), plots=False)
"""
OUTPUTS = ("metrics.json", "metrics.csv", "timeseries.csv", "jobs.csv")


def _run_in_process(seed: int, out: Path, hash_seed: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(seed), str(out)], cwd=ROOT, env=env)


def test_same_seed_gives_identical_bytes_across_processes(tmp_path: Path) -> None:
    # Different PYTHONHASHSEEDs: any iteration over a set of bytes/str would show.
    runs = [_run_in_process(7, tmp_path / name, hs) for name, hs in (("a", "1"), ("b", "2"))]
    assert [p.wait(timeout=120) for p in runs] == [0, 0]
    for name in OUTPUTS:
        a = (tmp_path / "a" / name).read_bytes()
        assert a == (tmp_path / "b" / name).read_bytes(), name
        assert len(a) > 20


def test_same_seed_same_plots_in_one_process(tmp_path: Path) -> None:
    scenario = load_scenario(SCENARIOS / "baseline.toml", SMALL)
    for name in ("a", "b"):
        write_run(run_scenario(scenario, 3), tmp_path / name)
    for png in sorted((tmp_path / "a").glob("*.png")):
        assert png.read_bytes() == (tmp_path / "b" / png.name).read_bytes(), png.name
    assert len(list((tmp_path / "a").glob("*.png"))) == 4


def test_a_different_seed_differs() -> None:
    scenario = load_scenario(SCENARIOS / "baseline.toml", SMALL)
    one = run_scenario(scenario, 1).summary
    two = run_scenario(scenario, 2).summary
    assert one["seed"] != two["seed"]
    one.pop("seed"), two.pop("seed")
    assert one != two
