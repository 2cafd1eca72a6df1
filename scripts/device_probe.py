#!/usr/bin/env python3
"""Print this machine's GPU probe as JSON: what a Pictor worker would advertise.

Run from the repository root on a GPU machine; needs only Python 3.11+ and the
``nvidia-ml-py`` wheel (``pip install --no-index nvidia_ml_py-*.whl``). No
Blender, trio or network is needed. Exit status 0 even without GPUs: the JSON
then says why (``"available": false``).

    python3 scripts/device_probe.py [--samples N] [--interval-s S]

``--samples`` re-reads utilisation, temperature and power N times, to show the
readings move under load.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

# The probe module lives in the repository; it imports only the stdlib and pynvml.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from node.render.device import cpu_device_class
from node.render.gpu import probe_gpus


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--samples", type=int, default=1)
    parser.add_argument("--interval-s", type=float, default=0.5)
    args = parser.parse_args()
    probes = []
    for i in range(max(1, args.samples)):
        if i:
            time.sleep(args.interval_s)
        probes.append(probe_gpus().as_json())
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "cpu_device_class": cpu_device_class(),
        "probe": probes[0],
        "later_samples": [
            [{k: g[k] for k in ("utilization_pct", "temperature_c", "power_w")} for g in p["gpus"]]
            for p in probes[1:]
        ],
    }
    json.dump(report, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
