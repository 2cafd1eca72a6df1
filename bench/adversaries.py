"""Each adversary's profit and the honest nodes' loss (issue 20): docs/SIMULATIONS.md's table.

    python bench/adversaries.py            # the table, as the doc shows it
    python bench/adversaries.py --json     # every run's accounts

Runs every row of ``simulations.adversary_table`` (a bundled scenario per
adversary, default protocol parameters, shortened, seeds 1 and 2) in parallel
processes and prints the markdown table; tests/simulations/test_adversary_table.py
checks that docs/SIMULATIONS.md shows exactly this. The accounts are
``simulations.accounts``'s (see its docstring for each definition).
"""

from __future__ import annotations

import argparse
import json
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from simulations.adversary_table import ROWS, SEEDS, run_row, table


def _one(args: tuple[int, int]) -> dict[str, int]:
    row, seed = args
    return run_row(ROWS[row], seed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="every run's accounts as JSON")
    parser.add_argument("--workers", type=int, default=2, help="processes")
    args = parser.parse_args()
    jobs = [(r, s) for r in range(len(ROWS)) for s in SEEDS]
    with ProcessPoolExecutor(args.workers) as pool:
        results = dict(zip(jobs, pool.map(_one, jobs), strict=True))
    if args.json:
        out: list[dict[str, Any]] = [
            {"adversary": ROWS[r][0], "scenario": ROWS[r][1], "overrides": ROWS[r][2], "seed": s,
             **results[(r, s)]} for r, s in jobs
        ]  # fmt: skip
        print(json.dumps(out, indent=2))
        return
    print(table(lambda row, seed: results[(ROWS.index(row), seed)]))


if __name__ == "__main__":
    main()
